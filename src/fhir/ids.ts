import { randomUUID } from 'node:crypto';

/**
 * Server-assigned resource ids: UUID version 7 (RFC 9562), a 48-bit Unix-millisecond timestamp
 * followed by random bits. Ids made one after another sort one after another, so a new resource's
 * rows land at the right-hand edge of every B-tree clustered by id instead of on a random page: a
 * commit dirties (and syncs) far fewer pages. Within one millisecond the 12-bit `rand_a` field
 * counts up (RFC 9562 §6.2, method 1), keeping the ids of this process strictly increasing; the 62
 * bits of `rand_b` come from a version 4 UUID (Node keeps a pool of random bytes for those), so
 * ids stay unguessable. The id reveals when the resource was created, which meta.lastUpdated of
 * its first version says anyway. `now` is the server's clock (epoch ms; callers pass
 * `ctx.now().getTime()`), so the id's time and meta.lastUpdated agree.
 */
export function newResourceId(now: number): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter > 0xfff) {
    // 4096 ids in one millisecond: borrow the next millisecond rather than repeat or go backwards.
    lastMs++;
    counter = 0;
  }
  const ts = lastMs.toString(16).padStart(12, '0');
  // randomUUID(): xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V being the variant (8..b), as v7 wants.
  return `${ts.slice(0, 8)}-${ts.slice(8)}-7${counter.toString(16).padStart(3, '0')}${randomUUID().slice(18)}`;
}

let lastMs = 0;
let counter = 0;
