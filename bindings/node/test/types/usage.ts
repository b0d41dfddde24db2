// Compiled (never run) by test/types.test.js with `tsc --strict`: the declarations must
// describe the documented uses of the API.
import http from 'node:http';
import * as keyward from 'keyward';
import { Store, Scopes, Verdict, KeywardError, NotFoundError, CredentialError, middleware, sendRefusal } from 'keyward';
import type { AuditEvent, AuditPage } from 'keyward';

const store: Store = new Store('/tmp/keys.redb', { concurrency: 'multi-process', flushIntervalMs: 'manual', pepper: Buffer.alloc(32) });
const again = Store.open('/tmp/keys.redb');
const same: boolean = store.sameStore(again);

const { key, info } = store.create({
  owner: 'acct_42',
  name: 'CI',
  scopes: ['read'],
  env: 'live',
  metadata: { team: 'infra' },
  expiresAt: new Date(),
  credits: { remaining: 10, refillAmount: 10, refillInterval: 'daily', cost: 1 },
});
const id: string = info.id;
const expires: number | null = info.expiresAt;

const v: Verdict = store.verify(key, { scopes: ['read'], at: Date.now(), cost: 1, info: true });
if (v.ok) {
  const owner: string | null = v.owner;
  const http200: 200 | 401 | 403 | 429 = v.httpStatus;
  void owner;
  void http200;
}
const code: string = v.code;
const pair = store.verifyPair(id, 'secret', { scopes: new Scopes(['read']) });
const fromHeaders = store.verifyHeaders({ 'x-api-key': key, accept: ['a', 'b'] });
const fromRaw = store.verifyHeaders(['X-Api-Key', key]);
const fromMap = store.verifyHeaders(new Map([['x-api-key', key]]));
const fromFetch = store.verifyHeaders(new Headers({ 'x-api-key': key }));
void [pair, fromHeaders, fromRaw, fromMap, fromFetch, code, same, expires];

const page = store.list('acct_42', { limit: 10, state: 'active' });
const next: number | null = page.next;
for (const k of store.listAll('acct_42')) void k.scopes;
const alice: Store = store.withActor('alice');
const audit: AuditPage = store.audit({ keyId: id, since: new Date(0), limit: 10 });
const firstEvent: AuditEvent | undefined = audit.events[0];
for (const e of store.auditAll({ actor: 'alice', pageSize: 50 })) void [e.action, e.changed, e.keyId];
store.setAuditRetention(90);
void [alice, firstEvent?.detail, audit.next];
store.update(id, { name: 'x', expiresAt: null, credits: null });
store.revoke(id, 'leaked');
const rotated = store.rotate(id, { graceMs: 0 });
store.delete(rotated.info.id);
const u = store.usage(id);
const uses: number = u.uses;
const days: { day: string; uses: number }[] = store.usageByDay(id, '2026-01-01', new Date());
const idle = store.unusedSince('acct_42', Date.now() - 86400000);
const credits = store.credits(id);
if (credits) void credits.remaining;
const stats = store.stats();
const staleness: number | null = stats.replica === null ? null : stats.replica.stalenessMs;
void [staleness, new Store('/tmp/replica.redb', { upstream: 'postgresql://kw@db.internal/kw' })];
const written: number = store.flush();
void [next, uses, days, idle, stats, written, store.allKeys(), store.get(id)];

const cred = keyward.extractCredential({ authorization: 'Bearer x' });
if (cred.kind === 'pair') void cred.secret;
else void cred.key;
const parsed = keyward.parseKey(key, { prefix: 'kw' });
if (parsed.valid) void parsed.secret.length;
else void parsed.error;

try {
  store.get('nope');
} catch (err) {
  if (err instanceof NotFoundError) void err.status;
  if (err instanceof CredentialError) void err.httpStatus;
  if (err instanceof KeywardError) void [err.code, err.detail.length];
}

const auth = middleware(store, { scopes: ['read'], onRefused: (req, res, verdict) => sendRefusal(res, verdict) });
const lazy = middleware(() => store);
http.createServer((req, res) => {
  auth(req, res, (err) => {
    if (err) return void res.writeHead(500).end();
    res.end(JSON.stringify((req as any).keyward));
  });
  lazy(req, res, () => undefined);
});
const report: keyward.LegacyImportReport = store.importLegacy('sanctum', 'id,token\n', {
  dryRun: true,
  allScopes: ['read'],
  sanctumExpirationMinutes: 60,
});
const legacyId: string = keyward.legacyKeyId(report.scheme, '42');
const origin: keyward.LegacyOrigin | null = store.get(legacyId).legacy;
void [report.alreadyPresent, origin?.upgradedAt, keyward.LEGACY_SCHEMES.drf];
// @ts-expect-error: not a system keyward imports
store.importLegacy('lotus-notes', '');
keyward.releasePersistent();
const abi: number = keyward.ABI_VERSION + keyward.library.abiVersion + keyward.constants.KW_MAX_KEY_LEN;
void abi;
store.close();
