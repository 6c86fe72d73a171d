/**
 * How the installation's Vault budget is split among the shard holders: a pure function of what each holder
 * asks for (its queued Vault work), the floor an idle holder keeps, and the installation's rate and burst.
 *
 * - Every one of the `slots` shards is counted, also those whose holder has not published yet (a holder that
 *   is starting, or one taking a shard over): each keeps at least the floor, so a holder that arrives always
 *   finds room to start without waiting for the others to shrink.
 * - Nobody busy: an even split (what the static split gave), so a shard that becomes busy starts from rate/N.
 * - Some busy: the idle ones keep the floor, the busy ones split the rest evenly (a holder with one queued
 *   request and one with a thousand get the same: demand says who is busy, not by how much, so a draining queue
 *   does not move the shares at every rebalance).
 *
 * Rates are requests per second (may be fractional); bursts are whole requests (the limiter's burst grants are
 * whole), at least 1 each while the installation's burst allows. The sum of the rates never exceeds `rate`, the
 * sum of the bursts never exceeds `burst`.
 */
export interface Share {
  rate: number;
  burst: number;
}

export interface AllocationInput {
  /** Each publishing holder's demand (queued Vault operations), by identity. */
  demands: ReadonlyMap<string, number>;
  /** Shards of the installation: holders counted even when they have not published. */
  slots: number;
  /** Requests per second an idle holder keeps. */
  floorRate: number;
  rate: number;
  burst: number;
}

/** Rates are rounded down to this step: what is published and what is summed are the same decimal numbers. */
export const RATE_STEP = 0.001;
const roundDown = (n: number) => Math.max(0, Math.floor(n / RATE_STEP + 1e-9) * RATE_STEP);

/** Sorted identities, so that the remainder of an uneven burst split lands on the same holders in every replica. */
function sortedIds(ids: Iterable<string>): string[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function allocate(input: AllocationInput): Map<string, Share> {
  const ids = sortedIds(input.demands.keys());
  const participants = Math.max(input.slots, ids.length, 1);
  const busy = ids.filter((id) => (input.demands.get(id) ?? 0) > 0);
  const shares = new Map<string, Share>();
  if (ids.length === 0) return shares;

  // Rates: the floor shrinks when the shards' floors alone would exceed the rate.
  const floorRate = roundDown(Math.min(input.floorRate, input.rate / participants));
  const evenRate = roundDown(input.rate / participants);
  const busyRate = busy.length === 0 ? evenRate : roundDown((input.rate - floorRate * (participants - busy.length)) / busy.length);

  // Bursts: whole requests; idle holders keep 1 (when there are enough for everyone), busy ones split the rest.
  const floorBurst = input.burst >= participants ? 1 : 0;
  const evenBurst = Math.floor(input.burst / participants);
  const busyBurstTotal = input.burst - floorBurst * (participants - busy.length);
  const busyBurst = busy.length === 0 ? evenBurst : Math.floor(busyBurstTotal / busy.length);
  let burstLeft = busy.length === 0 ? input.burst - evenBurst * participants : busyBurstTotal - busyBurst * busy.length;

  for (const id of ids) {
    const isBusy = busy.length === 0 || (input.demands.get(id) ?? 0) > 0;
    const rate = busy.length === 0 ? evenRate : isBusy ? busyRate : floorRate;
    let burst = busy.length === 0 ? evenBurst : isBusy ? busyBurst : floorBurst;
    // The remainder of an uneven split, one each in identity order (bounded by the number of holders).
    if (isBusy && burstLeft > 0) {
      burst += 1;
      burstLeft -= 1;
    }
    shares.set(id, { rate, burst });
  }
  return shares;
}
