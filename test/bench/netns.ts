/**
 * Two network namespaces of the run's own joined by a veth link, the sender's end shaped with
 * `tc` (a token bucket at a given rate, or nothing): where a clone's bytes cross a network the
 * run controls. Nothing else on the machine sees them; `destroy()` removes both namespaces (and
 * the link with them).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const ip = (...args: string[]) => execFileP('ip', args);

export interface Link {
  /** The sender's namespace and its address on the link. */
  readonly sender: { readonly netns: string; readonly address: string };
  readonly receiver: { readonly netns: string; readonly address: string };
  /** `rate` as tc says it (`1gbit`), or null for none; applied to what the sender puts on the link. */
  shape(rate: string | null): Promise<void>;
  /** Bytes the sender's end has put on the link so far (headers included). */
  sentBytes(): Promise<number>;
  destroy(): Promise<void>;
}

/** Both ends get `${prefix}0` and `${prefix}1` (a /24 the machine does not use, e.g. 10.213.0.1 → .10, .11). */
export async function createLink(name: string, prefix: string): Promise<Link> {
  const sender = { netns: `${name}-snd`, address: `${prefix}0` };
  const receiver = { netns: `${name}-rcv`, address: `${prefix}1` };
  const dev = { sender: `${name.slice(0, 10)}s`, receiver: `${name.slice(0, 10)}r` };
  const destroy = async () => {
    for (const ns of [sender.netns, receiver.netns]) await ip('netns', 'delete', ns).catch(() => {});
  };
  try {
    await ip('netns', 'add', sender.netns);
    await ip('netns', 'add', receiver.netns);
    await ip('link', 'add', dev.sender, 'netns', sender.netns, 'type', 'veth', 'peer', 'name', dev.receiver, 'netns', receiver.netns);
    for (const [end, d] of [[sender, dev.sender], [receiver, dev.receiver]] as const) {
      await ip('-n', end.netns, 'link', 'set', 'lo', 'up');
      await ip('-n', end.netns, 'addr', 'add', `${end.address}/24`, 'dev', d);
      await ip('-n', end.netns, 'link', 'set', d, 'up');
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  const tc = (...args: string[]) => execFileP('ip', ['netns', 'exec', sender.netns, 'tc', ...args]);
  return {
    sender,
    receiver,
    shape: async (rate) => {
      await tc('qdisc', 'del', 'dev', dev.sender, 'root').catch(() => {});
      // A burst of 1 MB: at least a timer tick's worth of bytes at 1 Gbit/s, so the rate is the cap.
      if (rate !== null) await tc('qdisc', 'add', 'dev', dev.sender, 'root', 'tbf', 'rate', rate, 'burst', '1mb', 'latency', '50ms');
    },
    sentBytes: async () => Number((await execFileP('ip', ['netns', 'exec', sender.netns, 'cat', `/sys/class/net/${dev.sender}/statistics/tx_bytes`])).stdout.trim()),
    destroy,
  };
}
