import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatRemaining, clockOffset } from '../countdown.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('formatRemaining', () => {
  test('zero is "now"', () => {
    assert.equal(formatRemaining(0), 'now');
  });

  test('negative durations are "now"', () => {
    assert.equal(formatRemaining(-1), 'now');
    assert.equal(formatRemaining(-5 * DAY), 'now');
  });

  test('non-numbers are "now"', () => {
    assert.equal(formatRemaining(NaN), 'now');
    assert.equal(formatRemaining(Infinity), 'now');
    assert.equal(formatRemaining(undefined), 'now');
    assert.equal(formatRemaining('5000'), 'now');
  });

  test('partial seconds round up so it never says now too early', () => {
    assert.equal(formatRemaining(1), '1 second');
    assert.equal(formatRemaining(999), '1 second');
    assert.equal(formatRemaining(1000), '1 second');
    assert.equal(formatRemaining(1001), '2 seconds');
  });

  test('seconds only', () => {
    assert.equal(formatRemaining(45 * SEC), '45 seconds');
    assert.equal(formatRemaining(59 * SEC), '59 seconds');
  });

  test('exactly one minute', () => {
    assert.equal(formatRemaining(MIN), '1 minute');
  });

  test('just under one minute rounds up to one minute', () => {
    assert.equal(formatRemaining(MIN - 1), '1 minute');
  });

  test('minutes and seconds', () => {
    assert.equal(formatRemaining(5 * MIN + 2 * SEC), '5 minutes, 2 seconds');
    assert.equal(formatRemaining(MIN + SEC), '1 minute, 1 second');
  });

  test('hours and minutes, seconds dropped', () => {
    assert.equal(formatRemaining(3 * HOUR + 5 * MIN + 30 * SEC), '3 hours, 5 minutes');
    assert.equal(formatRemaining(HOUR), '1 hour');
    assert.equal(formatRemaining(HOUR + 59 * SEC), '1 hour');
  });

  test('days and hours', () => {
    assert.equal(formatRemaining(2 * DAY + 3 * HOUR), '2 days, 3 hours');
    assert.equal(formatRemaining(DAY), '1 day');
    assert.equal(formatRemaining(DAY + HOUR), '1 day, 1 hour');
    assert.equal(formatRemaining(2 * DAY + 59 * MIN), '2 days');
  });

  test('many days', () => {
    assert.equal(formatRemaining(400 * DAY + 23 * HOUR + 59 * MIN), '400 days, 23 hours');
  });
});

describe('clockOffset', () => {
  test('client clock matches server: offset 0', () => {
    const iso = '2025-03-01T12:00:00Z';
    assert.equal(clockOffset(iso, Date.parse(iso)), 0);
  });

  test('client clock behind server: positive offset', () => {
    const server = Date.parse('2025-03-01T12:00:00Z');
    assert.equal(clockOffset('2025-03-01T12:00:00Z', server - 90 * SEC), 90 * SEC);
  });

  test('client clock ahead of server: negative offset', () => {
    const server = Date.parse('2025-03-01T12:00:00Z');
    assert.equal(clockOffset('2025-03-01T12:00:00Z', server + 2 * HOUR), -2 * HOUR);
  });

  test('understands numeric time-zone offsets and fractional seconds', () => {
    const client = Date.parse('2025-03-01T12:00:00Z');
    assert.equal(clockOffset('2025-03-01T07:00:00.250-05:00', client), 250);
    assert.equal(clockOffset('2025-03-01T13:00:00+01:00', client), 0);
  });

  test('unparseable input gives 0 (fall back to the client clock)', () => {
    assert.equal(clockOffset('not a date', Date.now()), 0);
    assert.equal(clockOffset('', Date.now()), 0);
    assert.equal(clockOffset(undefined, Date.now()), 0);
    assert.equal(clockOffset('2025-03-01T12:00:00Z', NaN), 0);
  });

  test('applying the offset gives the correct remaining time', () => {
    const deadline = Date.parse('2025-03-14T19:00:00Z');
    const serverNow = '2025-03-12T16:00:00Z';
    const clientNow = Date.parse(serverNow) + 3 * DAY; // client clock is wildly wrong
    const offset = clockOffset(serverNow, clientNow);
    assert.equal(formatRemaining(deadline - (clientNow + offset)), '2 days, 3 hours');
  });
});
