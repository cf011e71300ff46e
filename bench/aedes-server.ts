// Aedes reference broker for the benchmark: default in-memory persistence, plain TCP.
// Usage: node --import tsx bench/aedes-server.ts <port> [--nodelay]
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: aedes-server.ts <port>');
  process.exit(2);
}

const broker = await Aedes.createBroker();
const server = net.createServer({ noDelay: process.argv.includes('--nodelay') }, broker.handle);
server.on('error', (e) => {
  console.error('aedes listen error:', e.message);
  process.exit(1);
});
server.listen(port, '127.0.0.1');

const shutdown = () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
