import { Agent as HttpAgent, AgentOptions as HttpAgentOptions } from 'node:http';
import { Agent as HttpsAgent, AgentOptions as HttpsAgentOptions } from 'node:https';
import type { Duplex } from 'node:stream';

/**
 * Node's Agent turns TCP keep-alive on again each time a socket goes back to its pool
 * (`Agent.prototype.keepSocketAlive`: `socket.setKeepAlive(true, keepAliveMsecs)`), which is one or
 * more `setsockopt` calls per request on a socket that has it on already: the first time stays,
 * the repeats are skipped. Everything else keepSocketAlive decides (the server's Keep-Alive hint,
 * whether to keep the socket at all) is Node's own.
 */
function keepAliveOnce(socket: Duplex, keep: () => boolean): boolean {
  if (!alreadyKept.has(socket)) {
    alreadyKept.add(socket);
    return keep();
  }
  const target = socket as Duplex & { setKeepAlive: (...args: unknown[]) => unknown };
  const original = target.setKeepAlive;
  target.setKeepAlive = () => target;
  try {
    return keep();
  } finally {
    target.setKeepAlive = original;
  }
}
const alreadyKept = new WeakSet<Duplex>();

/** A keep-alive `http` agent that sets TCP keep-alive once per socket (keepAliveOnce). */
export class KeepAliveHttpAgent extends HttpAgent {
  constructor(options: HttpAgentOptions = {}) {
    super({ ...options, keepAlive: true });
  }

  override keepSocketAlive(socket: Duplex): boolean {
    return keepAliveOnce(socket, () => super.keepSocketAlive(socket) as unknown as boolean);
  }
}

/** A keep-alive `https` agent that sets TCP keep-alive once per socket (keepAliveOnce). */
export class KeepAliveHttpsAgent extends HttpsAgent {
  constructor(options: HttpsAgentOptions = {}) {
    super({ ...options, keepAlive: true });
  }

  override keepSocketAlive(socket: Duplex): boolean {
    return keepAliveOnce(socket, () => super.keepSocketAlive(socket) as unknown as boolean);
  }
}
