// Preloaded with `node --require`: resolves every *.test name to 127.0.0.1, so that an unmodified
// Node client (its built-in fetch included) reaches misdirect's origin on loopback, as curl's
// --resolve does. Other names resolve as usual.
'use strict';
const dns = require('node:dns');
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (/\.test\.?$/i.test(hostname)) {
    if (options && options.all) {
      return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    }
    return process.nextTick(callback, null, '127.0.0.1', 4);
  }
  return lookup.call(this, hostname, options, callback);
};
