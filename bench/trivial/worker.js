// The runtime's ceiling for reference: a worker that returns a constant and does nothing else.
export default {
  fetch() {
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  },
};
