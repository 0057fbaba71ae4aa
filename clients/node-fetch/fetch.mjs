// Fetches each URL given on the command line in turn with Node's built-in fetch (undici), the
// way a browser-like client would, and reports the status of each on stderr. Used as a client
// under test by the client profile clients/node-fetch.yaml:
//
//   misdirect run --client clients/node-fetch.yaml
for (const url of process.argv.slice(2)) {
  try {
    const response = await fetch(url);
    await response.arrayBuffer();
    console.error(`${url} ${response.status}`);
  } catch (error) {
    console.error(`${url} ${error.cause?.code ?? error.message}`);
  }
}
