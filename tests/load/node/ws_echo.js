// ws_echo.js: the Node.js baseline of bench/run.sh. What self-hosting users run today: a `ws`
// WebSocket server with the function's handler in process (no hop), here an echo.
//
//   node ws_echo.js [--listen=127.0.0.1:0]
//
// Prints exactly one stdout line `READY ws=<port>` once listening. Every message is echoed back
// with its kind (text/binary). A text message starting with "BROADCAST " is instead sent (the rest
// of it) to every other open connection, as the broadcast scenario of tests/load/fngate_load
// expects (the same command the raw Beast baseline understands).
'use strict';

const { WebSocketServer } = require('ws');

const BROADCAST = Buffer.from('BROADCAST ');

function parseArgs(argv) {
  let host = '127.0.0.1';
  let port = 0;
  for (const arg of argv) {
    const m = /^--listen=(.*):(\d+)$/.exec(arg);
    if (m) {
      host = m[1];
      port = Number(m[2]);
    } else {
      process.stderr.write(`ws_echo.js: unknown flag ${arg}\nusage: node ws_echo.js [--listen=HOST:PORT]\n`);
      process.exit(2);
    }
  }
  return { host, port };
}

const { host, port } = parseArgs(process.argv.slice(2));
// ws's server defaults: no permessage-deflate, client tracking on (wss.clients), Nagle off.
const wss = new WebSocketServer({ host, port, perMessageDeflate: false, backlog: 4096 });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length >= BROADCAST.length && data[0] === 0x42 &&
        data.subarray(0, BROADCAST.length).equals(BROADCAST)) {
      const payload = data.subarray(BROADCAST.length);
      for (const client of wss.clients) {
        if (client !== ws && client.readyState === 1) client.send(payload, { binary: false });
      }
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  process.stdout.write(`READY ws=${wss.address().port}\n`);
});
wss.on('error', (err) => {
  process.stderr.write(`ws_echo.js: ${err.message}\n`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
