// The API reference: the OpenAPI document rendered by Redoc. Search is off: it runs in a
// worker Redoc would load from a blob: URL, which the site's CSP does not allow.
const root = document.getElementById("redoc");
Redoc.init(root.dataset.spec, {
  disableSearch: true,
  hideDownloadButton: false,
  expandResponses: "200,201",
  jsonSampleExpandLevel: 3,
  theme: { colors: { primary: { main: "#3451d1" } } },
}, root, () => { document.body.dataset.ready = "true"; });
