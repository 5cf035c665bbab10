import { configSchema } from '../../src/config/schema';
import { activeMuteInterval, muteChecker } from '../../src/noise/mute';
import {
  compileTimeIntervals,
  isMuted,
  TimeIntervalError,
  type TimeIntervalEntryConfig,
} from '../../src/noise/time-intervals';

// Every check is a pure function of the settings and an instant: no clock.
const at = (iso: string): number => Date.parse(iso);

/** Whether one interval entry holds at an ISO instant. */
function active(entry: TimeIntervalEntryConfig, iso: string): boolean {
  const compiled = compileTimeIntervals([{ name: 'x', timeIntervals: [entry] }]);
  return isMuted(compiled.values(), at(iso)) === 'x';
}

describe('time intervals', () => {
  it('takes weekday names and inclusive ranges, including one across Sunday', () => {
    const workdays = { weekdays: ['monday:friday'] };
    expect(active(workdays, '2025-01-15T12:00:00Z')).toBe(true); // Wednesday
    expect(active(workdays, '2025-01-17T23:59:00Z')).toBe(true); // Friday
    expect(active(workdays, '2025-01-18T00:00:00Z')).toBe(false); // Saturday
    const weekend = { weekdays: ['saturday:sunday'] };
    expect(active(weekend, '2025-01-18T08:00:00Z')).toBe(true);
    expect(active(weekend, '2025-01-19T23:59:00Z')).toBe(true);
    expect(active(weekend, '2025-01-20T00:00:00Z')).toBe(false); // Monday
    const longWeekend = { weekdays: ['friday:monday', 'Wednesday'] };
    expect(active(longWeekend, '2025-01-19T12:00:00Z')).toBe(true); // Sunday
    expect(active(longWeekend, '2025-01-20T12:00:00Z')).toBe(true); // Monday
    expect(active(longWeekend, '2025-01-15T12:00:00Z')).toBe(true); // Wednesday
    expect(active(longWeekend, '2025-01-14T12:00:00Z')).toBe(false); // Tuesday
  });

  it('treats times as [start, end) and an end before the start as past midnight', () => {
    const night = { times: [{ startTime: '22:00', endTime: '06:00' }] };
    expect(active(night, '2025-01-15T21:59:00Z')).toBe(false);
    expect(active(night, '2025-01-15T22:00:00Z')).toBe(true);
    expect(active(night, '2025-01-15T23:59:00Z')).toBe(true);
    expect(active(night, '2025-01-16T00:00:00Z')).toBe(true);
    expect(active(night, '2025-01-16T05:59:00Z')).toBe(true);
    expect(active(night, '2025-01-16T06:00:00Z')).toBe(false);
    const day = { times: [{ startTime: '00:00', endTime: '24:00' }] };
    expect(active(day, '2025-01-16T23:59:00Z')).toBe(true);
  });

  it('reads each field at the same instant: Friday nights do not reach into Saturday', () => {
    const fridayNight = {
      weekdays: ['friday'],
      times: [{ startTime: '22:00', endTime: '06:00' }],
    };
    expect(active(fridayNight, '2025-01-17T23:00:00Z')).toBe(true);
    expect(active(fridayNight, '2025-01-17T05:00:00Z')).toBe(true);
    expect(active(fridayNight, '2025-01-18T02:00:00Z')).toBe(false);
  });

  it('evaluates in the entry location, daylight saving time included', () => {
    const berlinMorning = {
      times: [{ startTime: '08:00', endTime: '09:00' }],
      location: 'Europe/Berlin',
    };
    expect(active(berlinMorning, '2025-01-15T07:30:00Z')).toBe(true); // 08:30 CET
    expect(active(berlinMorning, '2025-01-15T08:30:00Z')).toBe(false); // 09:30 CET
    expect(active(berlinMorning, '2025-07-15T06:30:00Z')).toBe(true); // 08:30 CEST
    expect(active(berlinMorning, '2025-07-15T07:30:00Z')).toBe(false);
    // Friday 23:30 UTC is already Saturday in Tokyo.
    expect(active({ weekdays: ['saturday'], location: 'Asia/Tokyo' }, '2025-01-17T23:30:00Z')).toBe(
      true,
    );
    expect(active({ weekdays: ['saturday'] }, '2025-01-17T23:30:00Z')).toBe(false);
  });

  it('filters on days of the month (negative from the end), months and years', () => {
    const lastDay = { daysOfMonth: ['-1'] };
    expect(active(lastDay, '2024-02-29T12:00:00Z')).toBe(true);
    expect(active(lastDay, '2024-02-28T12:00:00Z')).toBe(false);
    expect(active(lastDay, '2025-02-28T12:00:00Z')).toBe(true);
    const firstWeek = { daysOfMonth: ['1:7'] };
    expect(active(firstWeek, '2025-03-07T12:00:00Z')).toBe(true);
    expect(active(firstWeek, '2025-03-08T12:00:00Z')).toBe(false);
    const holidays = { months: ['december', '1'], daysOfMonth: ['24:31', '1'] };
    expect(active(holidays, '2025-12-25T12:00:00Z')).toBe(true);
    expect(active(holidays, '2026-01-01T12:00:00Z')).toBe(true);
    expect(active(holidays, '2026-01-02T12:00:00Z')).toBe(false);
    expect(active(holidays, '2025-11-25T12:00:00Z')).toBe(false);
    const q4 = { months: ['october:december'], years: ['2025:2026'] };
    expect(active(q4, '2025-11-01T00:00:00Z')).toBe(true);
    expect(active(q4, '2027-11-01T00:00:00Z')).toBe(false);
  });

  it('is active when any entry of a named interval is', () => {
    const compiled = compileTimeIntervals([
      {
        name: 'off-hours',
        timeIntervals: [
          { weekdays: ['saturday:sunday'] },
          { times: [{ startTime: '00:00', endTime: '08:00' }] },
        ],
      },
    ]);
    expect(isMuted(compiled.values(), at('2025-01-18T12:00:00Z'))).toBe('off-hours');
    expect(isMuted(compiled.values(), at('2025-01-15T07:00:00Z'))).toBe('off-hours');
    expect(isMuted(compiled.values(), at('2025-01-15T08:00:00Z'))).toBeUndefined();
  });

  it.each([
    [{ times: [{ startTime: '8:00', endTime: '09:00' }] }, ['times', 0, 'startTime'], /HH:MM/],
    [{ times: [{ startTime: '08:00', endTime: '08:00' }] }, ['times', 0], /equal/],
    [{ weekdays: ['1'] }, ['weekdays', 0], /not a weekday/],
    [{ daysOfMonth: ['0'] }, ['daysOfMonth', 0], /day of the month/],
    [{ daysOfMonth: ['10:5'] }, ['daysOfMonth', 0], /ends before it starts/],
    [{ months: ['smarch'] }, ['months', 0], /not a month/],
    [{ years: ['2026:2025'] }, ['years', 0], /ends before it starts/],
    [{ location: 'Nowhere/Special' }, ['location'], /not a time zone/],
  ] as Array<[TimeIntervalEntryConfig, Array<string | number>, RegExp]>)(
    'refuses %j, naming the field',
    (entry, path, message) => {
      let error: unknown;
      try {
        compileTimeIntervals([{ name: 'x', timeIntervals: [entry] }]);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TimeIntervalError);
      expect((error as TimeIntervalError).path).toEqual([0, 'timeIntervals', 0, ...path]);
      expect((error as Error).message).toMatch(message);
    },
  );
});

describe('mute time intervals of routes', () => {
  const config = configSchema.parse({
    timeIntervals: [
      { name: 'nights', timeIntervals: [{ times: [{ startTime: '22:00', endTime: '07:00' }] }] },
      {
        name: 'weekends',
        timeIntervals: [{ weekdays: ['saturday:sunday'], location: 'Europe/Berlin' }],
      },
    ],
    routes: [
      {
        name: 'team-chat',
        muteTimeIntervals: ['nights', 'weekends'],
        instances: [{ plugin: 'log' }],
      },
      { name: 'pager', instances: [{ plugin: 'log' }] },
    ],
  });
  const muteReason = muteChecker(config);

  it('names the interval that mutes a route, and leaves other routes alone', () => {
    expect(muteReason('team-chat', at('2025-01-15T23:00:00Z'))).toBe(
      'route team-chat is muted by time interval "nights" (muteTimeIntervals)',
    );
    expect(muteReason('team-chat', at('2025-01-18T12:00:00Z'))).toMatch(/"weekends"/);
    // Sunday 21:30 UTC: not yet night (UTC), still the weekend in Berlin.
    expect(muteReason('team-chat', at('2025-01-19T21:30:00Z'))).toMatch(/"weekends"/);
    expect(muteReason('team-chat', at('2025-01-15T12:00:00Z'))).toBeUndefined();
    expect(muteReason('pager', at('2025-01-15T23:00:00Z'))).toBeUndefined();
    expect(muteReason('no-such-route', at('2025-01-15T23:00:00Z'))).toBeUndefined();
  });

  it('answers activeMuteInterval for one route with compiled intervals', () => {
    const intervals = compileTimeIntervals(config.timeIntervals);
    expect(activeMuteInterval(config.routes[0]!, intervals, at('2025-01-19T12:00:00Z'))).toBe(
      'weekends',
    );
    expect(
      activeMuteInterval(config.routes[1]!, intervals, at('2025-01-19T12:00:00Z')),
    ).toBeUndefined();
  });
});
