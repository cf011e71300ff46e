/**
 * PINGREQ and DISCONNECT: keep alive (§6.11), disconnect (§6.12) and sleep (§6.14).
 *
 *   DISCONNECT(duration) ─▶ DISCONNECT, asleep
 *   PINGREQ(ClientId)    ─▶ awake ─▶ buffered messages (REGISTER first where needed;
 *   (or from its address)   QoS 1/2 acknowledged) ─▶ PINGRESP, asleep again
 */
import type { SnContext } from '../context.js';
import { MsgType, type Disconnect, type PingReq } from '../packets.js';
import { unicast, type Peer, type SnSession } from '../session.js';

export function onPingreq(ctx: SnContext, peer: Peer, p: PingReq): void {
  const byAddress = ctx.byPeer.get(peer.key);
  if (p.clientId === undefined) {
    if (byAddress === undefined) return ctx.sendTo(peer, { type: MsgType.DISCONNECT, duration: undefined });
    // A sleeper that leaves out its (optional, §5.4.19) ClientId is known by its address, as
    // for every other message: it wakes. A PINGRESP alone delivered nothing and left its sleep
    // timer running, so a sensor pinging within its Duration was lost and its Will published.
    if (byAddress.state === 'asleep' || byAddress.state === 'awake') return wake(ctx, byAddress, peer);
    return ctx.reply(byAddress, { type: MsgType.PINGRESP });
  }
  const s = ctx.byId.get(p.clientId);
  if (s === undefined || s.state === 'disconnected' || s.state === 'lost') {
    // No session to wake: DISCONNECT tells the client to CONNECT again.
    return ctx.sendTo(peer, { type: MsgType.DISCONNECT, duration: undefined });
  }
  if (s.state === 'active') {
    if (s.peer?.key !== peer.key) return ctx.sendTo(peer, { type: MsgType.DISCONNECT, duration: undefined });
    return ctx.reply(s, { type: MsgType.PINGRESP });
  }
  // asleep/awake: the ClientId identifies the sleeper, so a new address (NAT) is followed.
  wake(ctx, s, peer);
}

function wake(ctx: SnContext, s: SnSession, peer: Peer): void {
  ctx.bind(s, peer);
  s.lastSeen = ctx.clock.now();
  ctx.apply(s, 'wake');
}

export function onDisconnect(ctx: SnContext, peer: Peer, p: Disconnect): void {
  const s = ctx.byPeer.get(peer.key);
  if (s === undefined) return; // nothing to end; answering could loop with a confused peer
  // The gateway acknowledges both kinds with a DISCONNECT (§6.12, §6.14).
  const answer = { type: MsgType.DISCONNECT, duration: undefined } as const;
  const to = unicast(peer);
  if (p.duration !== undefined && p.duration > 0) {
    s.sleepMs = p.duration * 1000;
    if (s.sleepMs === s.savedSleepMs || s.cleanSession) {
      ctx.sendTo(to, answer);
      return ctx.apply(s, 'sleep');
    }
    // A new Duration is stored first (apply): a restart waits that long for the sleeper.
    ctx.apply(s, 'sleep');
    return ctx.afterStored(s, () => void ctx.sendTo(to, answer));
  }
  ctx.apply(s, 'disconnect');
  // Answered once the stored session says that it owes no Will: a crash right after the
  // answer must not report a sensor that said goodbye as lost (persistence.ts).
  ctx.afterStored(s, () => void ctx.sendTo(to, answer));
}
