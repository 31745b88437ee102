// Where an imported page may be fetched from: the API checks the URL the owner gave (as for a
// webhook endpoint, SPEC §15); this checks it again, and every redirect, here.

const PRIVATE_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa"];

function privateV4(host) {
  const m = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return null;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === 0 || a === 10 || a === 127 || a >= 224 || (a === 169 && b === 254)
    || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b < 128);
}

function isPrivateHost(host) {
  host = host.replace(/\.$/, "");
  if (host === "localhost" || PRIVATE_SUFFIXES.some((s) => host.endsWith(s))) return true;
  if (host.startsWith("[")) {
    const v6 = host.slice(1, -1);
    return v6 === "::1" || v6 === "::" || /^f[cd]/.test(v6) || /^fe[89ab]/.test(v6) || /^::ffff:/.test(v6);
  }
  const v4 = privateV4(host);
  if (v4 !== null) return v4;
  return !host.includes(".");
}

/** Why `url` may not be fetched, or null. `allow`: hosts (`host` or `host:port`) that may be
 * fetched over plain http, private ones included (local development only). */
export function refuse(url, allow) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return "is not an absolute URL";
  }
  if (u.username || u.password) return "must not carry a user or password";
  const allowed = allow.includes(u.host) || allow.includes(u.hostname);
  if (u.protocol === "http:" && !allowed) return "must use https";
  if (u.protocol !== "https:" && u.protocol !== "http:") return "must be an https URL";
  if (!allowed && isPrivateHost(u.hostname)) return "points to a private, loopback or link-local address";
  return null;
}

export function allowList(text) {
  return (text || "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean);
}
