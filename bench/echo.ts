/**
 * The ceiling of one Node.js UDP socket: a crypto-free echo server. Every datagram is
 * sent straight back to where it came from, the way the responders reply (`send(msg,
 * port, address)`, with the engine's socket options, src/pipeline/udp.ts), so the end-to-end
 * benchmark can tell how much of a responder's cost is the socket itself (one `recvmsg`
 * and one `sendmsg` per datagram, ENGINE.md "Platform facts").
 */
import * as dgram from 'node:dgram';
import { literalLookup } from '../src/pipeline/udp.js';

/** Counters of a baseline responder (echo or naive). */
export interface BaselineCounts {
  received: number;
  replied: number;
  /** Drops by reason (naive only; echo drops nothing). */
  dropped: Record<string, number>;
}

/** A running echo server. */
export class EchoResponder {
  received = 0;
  replied = 0;

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => {
      this.received++;
      this.replied++;
      socket.send(msg, rinfo.port, rinfo.address);
    });
  }

  /** Bind on `host:port` (default an ephemeral loopback port) with a `recvBufferBytes` receive buffer. */
  static async start(host = '127.0.0.1', port = 0, recvBufferBytes = 4 << 20): Promise<EchoResponder> {
    // the ceiling of one socket uses the engine's socket options (src/pipeline/udp.ts)
    const socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup } as dgram.SocketOptions);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(recvBufferBytes);
    } catch {
      // capped by net.core.rmem_max; the engine gets the same treatment
    }
    socket.on('error', () => undefined); // ICMP errors from a peer that went away: nothing to do
    return new EchoResponder(socket);
  }

  /** The bound port. */
  get port(): number {
    return this.socket.address().port;
  }

  /** Counters so far. */
  counts(): BaselineCounts {
    return { received: this.received, replied: this.replied, dropped: {} };
  }

  /** Close the socket. */
  close(): Promise<BaselineCounts> {
    return new Promise((r) => this.socket.close(() => r(this.counts())));
  }
}
