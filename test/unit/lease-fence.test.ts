// The lease fence: whether this replica may act as the holder now, judged on the monotonic clock from the
// moment a successful renewal was SENT. Clock and timers are injected: no test here waits on real time.
import { ALWAYS_HOLDS, LeaseFence } from '../../src/kube/lease-fence.js';

/** A monotonic clock the test moves, and timers that fire only when the test says so. */
function fakeTime() {
  let now = 1000;
  const timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];
  return {
    clock: () => now,
    advance(ms: number) {
      now += ms;
    },
    setTimer(callback: () => void, ms: number) {
      const timer = { at: now + ms, callback, cancelled: false };
      timers.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
    /** Runs the timers that are due, in order. */
    runDue() {
      for (const t of timers.filter((t) => !t.cancelled && t.at <= now).sort((a, b) => a.at - b.at)) {
        t.cancelled = true;
        t.callback();
      }
    },
  };
}

function fence(renewDeadlineMs = 10_000) {
  const time = fakeTime();
  const lost: string[] = [];
  const f = new LeaseFence({ renewDeadlineMs, clock: time.clock, setTimer: (cb, ms) => time.setTimer(cb, ms) });
  f.onLost((reason) => lost.push(reason));
  return { time, f, lost };
}

test('without leader election the fence always holds', () => {
  expect(ALWAYS_HOLDS.holds()).toBe(true);
  expect(ALWAYS_HOLDS.reason()).toBeUndefined();
});

test('not held before an acquisition; held from the acquisition until renewDeadline after it was sent', () => {
  const { time, f } = fence();
  expect(f.holds()).toBe(false);
  const sentAt = f.sendTime();
  time.advance(100);
  f.acquired(sentAt);
  expect(f.holds()).toBe(true);
  time.advance(9_899); // sent + 9 999
  expect(f.holds()).toBe(true);
  time.advance(1);
  expect(f.holds()).toBe(false);
});

test('a renewal counts from when it was sent, not from when its answer arrived', () => {
  const { time, f } = fence();
  f.acquired(f.sendTime()); // valid until t0 + 10 000
  time.advance(5_000);
  const sentAt = f.sendTime(); // t0 + 5 000
  time.advance(4_000); // the answer comes 4 s later
  f.renewed(sentAt);
  expect(f.remainingMs()).toBe(6_000); // until sent + 10 000, i.e. now + 6 000 (not now + 10 000)
  time.advance(5_999);
  expect(f.holds()).toBe(true);
  time.advance(1);
  expect(f.holds()).toBe(false);
});

test('a process paused past its deadline finds the fence closed on waking, before any timer of its own has run', () => {
  const { time, f, lost } = fence();
  f.acquired(f.sendTime());
  time.advance(27_000); // SIGSTOP for 27 s, then SIGCONT: no timer has fired yet
  expect(f.holds()).toBe(false);
  expect(f.reason()).toMatch(/renew deadline/);
  expect(lost).toHaveLength(1); // announced by the check itself
  time.runDue(); // the expiry timer runs afterwards: no second announcement
  expect(lost).toHaveLength(1);
});

test('a renewal answered after the deadline does not reopen the fence; only a new acquisition does', () => {
  const { time, f, lost } = fence();
  f.acquired(f.sendTime());
  time.advance(9_000);
  const sentAt = f.sendTime();
  time.advance(2_000); // expired meanwhile (at +10 000), the answer arrives at +11 000
  time.runDue();
  expect(lost).toHaveLength(1);
  f.renewed(sentAt); // sent + 10 000 = +19 000 would still be ahead: but the loss was announced and acted on
  expect(f.holds()).toBe(false);
  f.acquired(f.sendTime());
  expect(f.holds()).toBe(true);
  const late = f.sendTime();
  time.advance(10_000);
  f.acquired(late); // an acquisition answered after its own deadline grants nothing either
  expect(f.holds()).toBe(false);
});

test('the loss is announced once per term: by the expiry timer while nothing asks, or by revoke', () => {
  const { time, f, lost } = fence();
  f.acquired(f.sendTime());
  time.advance(10_000);
  time.runDue();
  expect(lost).toEqual([expect.stringMatching(/renew deadline/)]);
  f.revoke('again');
  expect(lost).toHaveLength(1);

  f.acquired(f.sendTime());
  f.revoke('the lease is now held by other');
  f.revoke('twice');
  expect(lost).toEqual([expect.stringMatching(/renew deadline/), 'the lease is now held by other']);
  expect(f.holds()).toBe(false);
  expect(f.reason()).toBe('the lease is now held by other');
  time.runDue(); // the cancelled expiry timer says nothing
  expect(lost).toHaveLength(2);
});

test('renewals keep the fence open indefinitely; the expiry timer follows the latest one', () => {
  const { time, f, lost } = fence(1_000);
  f.acquired(f.sendTime());
  for (let i = 0; i < 20; i++) {
    time.advance(500);
    f.renewed(f.sendTime());
    time.runDue();
    expect(f.holds()).toBe(true);
  }
  expect(lost).toHaveLength(0);
  time.advance(1_000);
  time.runDue();
  expect(lost).toHaveLength(1);
});
