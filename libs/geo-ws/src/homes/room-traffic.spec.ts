import { MIN_EVENTS_TO_MOVE, RoomTraffic } from './room-traffic.js';

describe('RoomTraffic: when a room should move to where its events come from', () => {
  const WINDOW = 30_000;
  const record = (traffic: RoomTraffic, room: string, region: string, count: number, at: number) => {
    for (let i = 0; i < count; i++) traffic.record(room, region, at);
  };

  it('moves a room to a region with more than the share of at least ten events, once a window passed since counting began', () => {
    const traffic = new RoomTraffic(WINDOW, 0.6);
    record(traffic, 'r', 'asia', 3, 0);
    record(traffic, 'r', 'us', 8, 6000);
    // 8 of 11 = 73 % from us, but the room was first seen less than a window ago: it stays.
    expect(traffic.verdict('r', 'asia', 7000)).toMatchObject({ moveTo: undefined, total: 11 });
    record(traffic, 'r', 'us', 10, WINDOW);
    // The asia events of t=0 left the window: 18 of 18 from us.
    expect(traffic.verdict('r', 'asia', WINDOW)).toEqual({ moveTo: 'us', total: 18, share: 1 });
    // Already there: nothing to do.
    expect(traffic.verdict('r', 'us', WINDOW).moveTo).toBeUndefined();
  });

  it('stays below the share, and below ten events whatever the share', () => {
    const traffic = new RoomTraffic(WINDOW, 0.6);
    record(traffic, 'r', 'us', 6, WINDOW);
    record(traffic, 'r', 'eu', 4, WINDOW);
    expect(traffic.verdict('r', 'asia', WINDOW + 1)).toMatchObject({ moveTo: undefined, share: 0.6 }); // 60 % is not more than 60 %
    const few = new RoomTraffic(WINDOW, 0.6);
    record(few, 'q', 'us', MIN_EVENTS_TO_MOVE - 1, WINDOW);
    expect(few.verdict('q', 'asia', WINDOW * 2 - 1).moveTo).toBeUndefined();
  });

  it('never flaps: after a move the counts start again and the room stays a whole window', () => {
    const traffic = new RoomTraffic(WINDOW, 0.6);
    record(traffic, 'r', 'us', 10, 0);
    record(traffic, 'r', 'us', 10, 20_000);
    expect(traffic.verdict('r', 'asia', WINDOW).moveTo).toBe('us');
    traffic.moved('r', WINDOW);
    record(traffic, 'r', 'asia', 20, WINDOW + 1000);
    expect(traffic.verdict('r', 'us', WINDOW + 1000).moveTo).toBeUndefined();
    expect(traffic.verdict('r', 'us', 2 * WINDOW + 500).moveTo).toBe('asia');
  });

  it('holds at most maxRooms rooms, forgetting the least recently active, and sweeps idle ones', () => {
    const traffic = new RoomTraffic(WINDOW, 0.6, 2);
    traffic.record('a', 'us', 0);
    traffic.record('b', 'us', 0);
    traffic.record('a', 'us', 1);
    traffic.record('c', 'us', 2); // b was the least recently active
    expect(traffic.size).toBe(2);
    expect(traffic.verdict('b', null, 3).total).toBe(0);
    expect(traffic.verdict('a', null, 3).total).toBe(2);
    traffic.sweep(3 * WINDOW);
    expect(traffic.size).toBe(0);
  });
});
