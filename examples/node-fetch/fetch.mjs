// Fetches each URL given on the command line in turn with Node's built-in fetch (undici), the
// way a browser-like client would, and reports the status of each on stderr. Used as a client
// under test:
//
//   misdirect run --filter 'client/*' \
//     --protocol h1 --client 'NODE_EXTRA_CA_CERTS={ca} node --require ./examples/node-fetch/resolve-test-names.cjs ./examples/node-fetch/fetch.mjs {urls}'
for (const url of process.argv.slice(2)) {
  try {
    const response = await fetch(url);
    await response.arrayBuffer();
    console.error(`${url} ${response.status}`);
  } catch (error) {
    console.error(`${url} ${error.cause?.code ?? error.message}`);
  }
}
