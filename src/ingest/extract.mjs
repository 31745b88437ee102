// Text out of a file or a page, as blocks of one place each: a PDF's page, or the text under
// one heading path of a DOCX, HTML or Markdown document. The twin's object joins the blocks
// into the document's content and splits each into passages (src/knowledge/model.rs).
import { parseHTML } from "linkedom";
import { Readability } from "@mozilla/readability";

export const MAX_FILE_BYTES = 10 * 1024 * 1024;

/** A document that cannot become knowledge, with the reason the owner sees. */
export class IngestError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const EXTENSIONS = {
  pdf: "pdf", docx: "docx", html: "html", htm: "html", xhtml: "html",
  md: "markdown", markdown: "markdown", txt: "text", text: "text",
};

function extension(name) {
  const m = /\.([a-z0-9]+)$/i.exec(name || "");
  return m ? m[1].toLowerCase() : "";
}

function startsWith(bytes, ascii) {
  return ascii.split("").every((c, i) => bytes[i] === c.charCodeAt(0));
}

function utf8(bytes) {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.includes("\u0000") ? null : text.replace(/^\uFEFF/, "");
  } catch {
    return null;
  }
}

/** The format of a file, read from its bytes first: a name or a media type only chooses among
 * the text formats, so an executable named `.pdf` is refused, never parsed. */
export function sniff(bytes, filename, mediaType) {
  const ext = EXTENSIONS[extension(filename)];
  const type = (mediaType || "").split(";")[0].trim().toLowerCase();
  const head = bytes.subarray(0, 1024);
  const pdfAt = new TextDecoder("latin1").decode(head).indexOf("%PDF-");
  if (pdfAt >= 0) return "pdf";
  if (startsWith(bytes, "PK\u0003\u0004")) {
    if (ext === "docx" || type.includes("wordprocessingml")) return "docx";
    throw new IngestError("UNSUPPORTED_TYPE", "This is a ZIP archive, not a DOCX document; upload a PDF, DOCX, HTML, Markdown or text file");
  }
  const text = utf8(bytes);
  if (text === null) {
    const what = startsWith(bytes, "MZ") ? "a Windows executable" : "not a PDF, DOCX or UTF-8 text file";
    const named = ext ? ` (though it is named .${extension(filename)})` : "";
    throw new IngestError("UNSUPPORTED_TYPE", `This file is ${what}${named}; upload a PDF, DOCX, HTML, Markdown or text file`);
  }
  if (ext === "pdf" || ext === "docx") {
    throw new IngestError("UNSUPPORTED_TYPE", `This file is named .${extension(filename)} but is plain text; rename it or upload the real document`);
  }
  if (ext) return ext;
  if (type === "text/html" || type === "application/xhtml+xml") return "html";
  if (type === "text/markdown") return "markdown";
  if (/^\s*(<!doctype html|<html[\s>])/i.test(text)) return "html";
  return "text";
}

const squash = (s) => s.replace(/[\s\u00a0]+/g, " ").trim();

/** Paragraphs under their heading paths. */
class Sections {
  constructor() {
    this.path = [];
    this.blocks = [];
    this.open({ section: null });
  }
  open(place) {
    this.current = { ...place, paras: [] };
    this.blocks.push(this.current);
  }
  heading(level, text) {
    if (!text) return;
    this.path = this.path.filter((h) => h.level < level);
    this.path.push({ level, text });
    this.open({ section: this.path.map((h) => h.text).join(" › ") });
    this.current.paras.push(text);
  }
  para(text) {
    if (text) this.current.paras.push(text);
  }
  done() {
    return this.blocks
      .map((b) => ({ text: b.paras.join("\n\n"), section: b.section }))
      .filter((b) => b.text.trim());
  }
}

const SKIP = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "SVG", "NAV", "FOOTER", "HEADER", "ASIDE", "FORM", "BUTTON", "IFRAME"]);
const LEAF = new Set(["P", "PRE", "BLOCKQUOTE", "DT", "DD", "FIGCAPTION", "CAPTION", "ADDRESS"]);

function walk(node, out) {
  for (const el of node.childNodes) {
    if (el.nodeType === 3) {
      out.para(squash(el.textContent));
      continue;
    }
    if (el.nodeType !== 1) continue;
    const tag = el.tagName.toUpperCase();
    if (SKIP.has(tag) || el.getAttribute("aria-hidden") === "true") continue;
    const h = /^H([1-6])$/.exec(tag);
    if (h) out.heading(Number(h[1]), squash(el.textContent));
    else if (tag === "TR") {
      const cells = [...el.children].map((c) => squash(c.textContent)).filter(Boolean);
      out.para(cells.join(" | "));
    } else if (LEAF.has(tag)) out.para(squash(el.textContent));
    else if (tag === "LI" && !el.querySelector("ul, ol, p, div")) out.para(squash(el.textContent));
    else walk(el, out);
  }
}

// linkedom gives a fragment no body: wrap it.
const page = (html) => parseHTML(/<html[\s>]/i.test(html) ? html : `<!doctype html><html><body>${html}</body></html>`);

/** A web page's main text (Readability drops navigation, footers and asides) or an HTML
 * document's whole body (`whole`: DOCX through mammoth), with its headings. */
export function htmlBlocks(html, { whole = false } = {}) {
  const { document } = page(html);
  const title = squash(document.querySelector("title")?.textContent || "");
  let root = document.body || document.documentElement;
  if (!whole) {
    // Readability changes the document it reads: give it a copy.
    const article = new Readability(page(html).document, { charThreshold: 200 }).parse();
    if (article?.content) root = page(article.content).document.body;
    const out = new Sections();
    walk(root, out);
    return { title: squash(article?.title || "") || title, blocks: out.done() };
  }
  const out = new Sections();
  walk(root, out);
  return { title, blocks: out.done() };
}

/** Markdown kept as written (its passages are substrings of the file), cut at its headings. */
export function markdownBlocks(text) {
  const out = [];
  const path = [];
  let fence = false;
  let current = { lines: [], section: null };
  for (const line of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const h = !fence && /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(line);
    if (h) {
      out.push(current);
      const level = h[1].length;
      while (path.length && path[path.length - 1].level >= level) path.pop();
      path.push({ level, text: h[2] });
      current = { lines: [], section: path.map((p) => p.text).join(" › ") };
    }
    current.lines.push(line);
  }
  out.push(current);
  return out.map((b) => ({ text: b.lines.join("\n").trim(), section: b.section })).filter((b) => b.text);
}

/** A PDF page's text, line by line, with a space where the layout leaves a gap. */
function pageText(items) {
  let out = "";
  let lastEnd = null;
  for (const item of items) {
    if (typeof item.str !== "string") continue;
    const x = item.transform?.[4] ?? 0;
    const size = Math.abs(item.transform?.[0] || 10);
    if (lastEnd !== null && item.str && x - lastEnd > size * 0.15 && !/\s$/.test(out) && !/^\s/.test(item.str)) out += " ";
    out += item.str;
    lastEnd = x + (item.width || 0);
    if (item.hasEOL) {
      out += "\n";
      lastEnd = null;
    }
  }
  return out
    .split("\n")
    .map((l) => l.replace(/[ \t\u00a0]+/g, " ").trim())
    .filter(Boolean)
    .join("\n");
}

export async function pdfBlocks(bytes) {
  const { getDocumentProxy } = await import("unpdf");
  let pdf;
  try {
    pdf = await getDocumentProxy(new Uint8Array(bytes));
  } catch (e) {
    if (e?.name === "PasswordException") {
      throw new IngestError("ENCRYPTED_PDF", "This PDF is encrypted with a password; upload an unprotected copy");
    }
    throw new IngestError("UNREADABLE", `This PDF could not be read (${e?.name || "damaged file"})`);
  }
  const blocks = [];
  for (let n = 1; n <= pdf.numPages; n++) {
    const page = await pdf.getPage(n);
    const { items } = await page.getTextContent();
    const text = pageText(items);
    if (text) blocks.push({ text, page: n });
    page.cleanup();
  }
  const letters = blocks.reduce((sum, b) => sum + (b.text.match(/\p{L}/gu) || []).length, 0);
  if (letters < 20) {
    throw new IngestError("SCANNED_PDF", `This PDF has no text layer (${pdf.numPages} page(s) of images: a scan?); run OCR on it first`);
  }
  return { blocks, pages: pdf.numPages };
}

export async function docxBlocks(bytes) {
  const mammoth = (await import("mammoth")).default;
  let html;
  try {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    // `arrayBuffer` is what its browser build (bundled for the Worker) reads, `buffer` its Node one.
    ({ value: html } = await mammoth.convertToHtml({ arrayBuffer: buffer, buffer }));
  } catch (e) {
    throw new IngestError("UNREADABLE", "This DOCX could not be read (damaged, or not a Word document)");
  }
  return htmlBlocks(html, { whole: true });
}

/** `{blocks, pages?, title?}` of a document in `format`, NFC throughout (a PDF may give
 * decomposed Vietnamese marks; questions come composed). */
export async function extract(bytes, format) {
  let result;
  if (format === "pdf") result = await pdfBlocks(bytes);
  else if (format === "docx") result = await docxBlocks(bytes);
  else {
    const text = utf8(bytes);
    if (text === null) throw new IngestError("UNSUPPORTED_TYPE", "This file is not UTF-8 text");
    if (format === "html") result = htmlBlocks(text);
    else if (format === "markdown") result = { blocks: markdownBlocks(text) };
    else result = { blocks: [{ text: text.replace(/\r\n?/g, "\n") }] };
  }
  result.blocks = result.blocks.map((b) => ({ ...b, text: b.text.normalize("NFC"), section: b.section?.normalize("NFC") ?? null }));
  if (!result.blocks.some((b) => b.text.trim())) {
    throw new IngestError("NO_TEXT", "No text was found in this document");
  }
  return result;
}
