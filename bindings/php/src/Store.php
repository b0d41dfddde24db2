<?php

declare(strict_types=1);

namespace Keyward;

use FFI;
use FFI\CData;
use Keyward\Exception\ArgumentException;
use Keyward\Exception\ClosedException;
use Keyward\Exception\InternalException;
use Keyward\Exception\KeywardException;
use Psr\Http\Message\MessageInterface;

/**
 * A keyward key store: issue, verify, revoke, rotate and count API keys, in-process.
 *
 * Two ways to get one:
 *
 *  - Store::persistent($path): the store of this process, for web requests. Opened once per
 *    process (PHP-FPM worker) and kept, warm, for the life of the worker (flushed when it
 *    exits); every later request gets it back without touching the disk. Letting the object
 *    go (at the end of the request) does not close anything.
 *  - Store::open($path): a handle of its own, closed (and its usage flushed) by close() or when
 *    the object is destroyed. For CLI scripts and tools.
 *
 * Both accept the same options. Several processes may use one store file at once
 * (multi-process mode is the default); a revoke in one is seen by every other on its next
 * verify. Verify never writes to disk: usage counts are flushed every $flushIntervalMs
 * (default 1 s) by a background thread, on flush() and on close().
 *
 * Every method throws a subclass of KeywardException on failure (ArgumentException,
 * ClosedException, NotFoundException, PolicyException, StorageException...). A refused key is
 * not a failure: verify() returns a Verdict.
 */
final class Store
{
    /** $flushIntervalMs value that turns the background flush off (flush() and close() only). */
    public const FLUSH_MANUAL = Abi::KW_FLUSH_MANUAL;

    /** Key states for list(). */
    public const STATE_ALL = Abi::KW_STATE_ALL;
    public const STATE_ACTIVE = Abi::KW_STATE_ACTIVE;
    public const STATE_REVOKED = Abi::KW_STATE_REVOKED;
    public const STATE_EXPIRED = Abi::KW_STATE_EXPIRED;

    /** Prefix of the process environment variables that remember persistent handles. */
    public const HANDLE_ENV_PREFIX = 'KEYWARD_PHP_STORE_';

    /** The library, taken on first use: a persistent store's request may never need it (extension). */
    private ?FFI $ffi;
    private int $handle;
    /**
     * The address of kw_verify_headers_ex in the library this store's handle belongs to, for
     * the keyward_native extension (Library::extensionVerify()); 0: verify through FFI.
     */
    private int $extensionVerify;
    private ?CData $verdict = null;
    /** The C block verifyCredentials() writes a request's credential headers into. */
    private ?CData $headerBlock = null;
    /** Its size, address and its start as a `kw_header *`. */
    private int $headerBlockSize = 0;
    private int $headerAddress = 0;
    private ?CData $headerArray = null;
    private ?CData $verdictPtr = null;
    private ?CData $info = null;
    private ?CData $infoLen = null;
    /** @var array<string, array{0: ?CData, 1: int, 2: list<CData>}> scope arrays by joined names */
    private array $scopeCache = [];
    /** @var ?array<mixed> the scope list of the last scopes() hit, and its arguments */
    private ?array $lastScopes = null;
    /** @var array{0: ?CData, 1: int} */
    private array $lastScopeArgs = [null, 0];
    /** @var array{0: ?CData, 1: int, 2: list<CData>}|null */
    private ?array $lastScopeEntry = null;

    private function __construct(
        ?FFI $ffi,
        int $handle,
        private readonly string $path,
        private readonly ?string $envName,
        ?int $extensionVerify = null,
    ) {
        $this->ffi = $ffi;
        $this->handle = $handle;
        $this->extensionVerify = $extensionVerify ?? Library::extensionVerify($this->ffi());
    }

    /**
     * Opens (creating if needed) the store at $path with a handle of its own, closed by close()
     * or when this object is destroyed. Opening a path this process already has open returns a
     * handle onto the same store (same warm index, no disk access); the options must then agree.
     *
     * @param string $path database file (its directory must exist)
     * @param ?string $pepper the pepper: 32 raw bytes or 64 hex characters (e.g. from a secret
     *     manager); null: $pepperFile, else "<path>.pepper" (created with mode 0600 for a new store)
     * @param ?string $pepperFile path of a pepper file (mode 0600)
     * @param ?string $prefix key prefix of a new store ([a-z0-9]{1,16}); null: the stored one, or "kw"
     * @param bool $singleProcess true only when no other process ever opens the file (faster
     *     commits; others then get KW_LOCKED). Default: multi-process (PHP-FPM, several pools, CLI)
     * @param int $maxActiveKeysPerOwner policy: most active keys per owner (0 = unlimited)
     * @param bool $keepLastKey policy: refuse to revoke or delete an owner's last active key
     * @param int $maxLifetimeMs policy: longest key lifetime in ms (0 = unlimited; else every key needs an expiry)
     * @param int $flushIntervalMs background usage flush interval (0 = default 1000 ms; FLUSH_MANUAL = off)
     * @param int $indexCapacity most key records this process keeps decoded in front of the shared verify table (0 = default 65 536)
     * @param ?string $upstream connection URL of the upstream PostgreSQL this store replicates
     *     (several hosts, README "Several hosts"), e.g. "postgresql://keyward@db.internal/keyward":
     *     create(), createMany(), update(), revoke(), delete() and rotate() are then written to
     *     PostgreSQL first and applied here once it committed (UpstreamException when it cannot
     *     be reached: nothing was changed). Opening connects to nothing; verifies never use it.
     * @param bool $pin KW_OPEN_PERSISTENT: keep the store open (warm) for the life of the
     *     process even after its last handle is closed, e.g. when a framework opens and closes
     *     a Store per request. Closing a handle then never writes; usage is flushed by the
     *     background thread and, at a normal process exit, by kw_release_persistent()
     *     (registered to run at exit on the first pinned open). persistent() is usually the
     *     better choice for PHP-FPM (no kw_open per request).
     * @throws KeywardException (StorageException for the file, the pepper and locks; ArgumentException)
     */
    public static function open(
        string $path,
        #[\SensitiveParameter] ?string $pepper = null,
        ?string $pepperFile = null,
        ?string $prefix = null,
        bool $singleProcess = false,
        int $maxActiveKeysPerOwner = 0,
        bool $keepLastKey = false,
        int $maxLifetimeMs = 0,
        int $flushIntervalMs = 0,
        int $indexCapacity = 0,
        bool $pin = false,
        #[\SensitiveParameter] ?string $upstream = null,
    ): self {
        $ffi = Library::ffi();
        $handle = self::openHandle($ffi, $path, $pin, $pepper, $pepperFile, $prefix, $singleProcess,
            $maxActiveKeysPerOwner, $keepLastKey, $maxLifetimeMs, $flushIntervalMs, $indexCapacity, $upstream);
        if ($pin) {
            Library::releasePersistentAtExit();
        }
        return new self($ffi, $handle, $path, null);
    }

    /**
     * The store of this process at $path, for web requests: opened on the first call in the
     * process and kept open, with its warm verify index, until the process exits. Every later
     * call (every request of a PHP-FPM worker) returns it without touching the disk or even
     * calling into the library. Destroying the object (at the end of the request) closes
     * nothing; close() does.
     *
     * The handle is remembered in this process's environment (KEYWARD_PHP_STORE_<hash of path
     * and options> = "<pid>:<handle>:<address for the keyward_native extension, 0 without>"),
     * which PHP does not reset between requests; a forked child (other pid) opens its own
     * handle onto the store the parent had.
     *
     * Usage is flushed every $flushIntervalMs by a background thread, and when the process
     * exits normally: an exit handler closes the handle, which as the store's last handle
     * flushes what was counted since (a PHP-FPM worker stopping gracefully, or recycled by
     * pm.max_requests, loses no counts). A crash or SIGKILL loses at most one interval.
     *
     * The handle is deliberately not opened with KW_OPEN_PERSISTENT: a pinned store is never
     * closed, so nothing would flush it at exit. Kept open, the handle does the pinning.
     *
     * Options as open(); calls with different options for one path are different stores to
     * this cache, and the library refuses conflicting ones (StorageException CONFIG_MISMATCH).
     *
     * @throws KeywardException
     */
    public static function persistent(
        string $path,
        #[\SensitiveParameter] ?string $pepper = null,
        ?string $pepperFile = null,
        ?string $prefix = null,
        bool $singleProcess = false,
        int $maxActiveKeysPerOwner = 0,
        bool $keepLastKey = false,
        int $maxLifetimeMs = 0,
        int $flushIntervalMs = 0,
        int $indexCapacity = 0,
        #[\SensitiveParameter] ?string $upstream = null,
    ): self {
        $parts = [
            $path, $pepper === null ? '-' : hash('sha256', $pepper), $pepperFile ?? '-', $prefix ?? '-',
            (int) $singleProcess, $maxActiveKeysPerOwner, (int) $keepLastKey, $maxLifetimeMs,
            $flushIntervalMs, $indexCapacity,
        ];
        if ($upstream !== null) {
            $parts[] = hash('sha256', $upstream); // the URL may carry a password
        }
        $envName = self::HANDLE_ENV_PREFIX . hash('md5', implode("\0", $parts));
        $pid = (string) getmypid();
        $saved = Library::processEnv($envName);
        if ($saved !== null && str_starts_with($saved, $pid . ':')) {
            [, $handle, $extensionVerify] = explode(':', $saved) + [2 => '0'];
            $extensionVerify = Library::$useExtension ? (int) $extensionVerify : 0;
            // With the extension, a request may verify without ever needing the library: take it later.
            return new self($extensionVerify === 0 ? Library::ffi() : null, (int) $handle, $path, $envName, $extensionVerify);
        }
        $ffi = Library::ffi();
        $handle = self::openHandle($ffi, $path, false, $pepper, $pepperFile, $prefix, $singleProcess,
            $maxActiveKeysPerOwner, $keepLastKey, $maxLifetimeMs, $flushIntervalMs, $indexCapacity, $upstream);
        $store = new self($ffi, $handle, $path, $envName);
        Library::setProcessEnv($envName, "$pid:$handle:" . Library::extensionVerify($ffi, ignoreSwitch: true));
        Library::closeAtExit($handle);
        return $store;
    }

    /**
     * Lets the keyward_native extension's Guard path use this store (keyward_native_guard_bind):
     * Guard calls it on its default store. Nothing happens unless this is a persistent store
     * verifying through the extension.
     *
     * @internal
     */
    public function bindNativeGuard(): void
    {
        if ($this->extensionVerify === 0 || $this->envName === null || !\defined('KEYWARD_NATIVE_GUARD')) {
            return;
        }
        $entry = Library::processEnv($this->envName);
        if ($entry !== null) {
            \keyward_native_guard_bind($this->extensionVerify, $this->handle, $this->envName, $entry);
        }
    }

    /** kw_open; $persistent sets KW_OPEN_PERSISTENT. */
    private static function openHandle(
        FFI $ffi,
        string $path,
        bool $persistent,
        #[\SensitiveParameter] ?string $pepper,
        ?string $pepperFile,
        ?string $prefix,
        bool $singleProcess,
        int $maxActiveKeysPerOwner,
        bool $keepLastKey,
        int $maxLifetimeMs,
        int $flushIntervalMs,
        int $indexCapacity,
        #[\SensitiveParameter] ?string $upstream = null,
    ): int {
        if ($flushIntervalMs < 0 && $flushIntervalMs !== self::FLUSH_MANUAL) {
            throw Native::argument("flushIntervalMs must be positive, 0 (default) or Store::FLUSH_MANUAL, got $flushIntervalMs");
        }
        $keep = [];
        $o = $ffi->new('kw_options');
        [$buf, $ptr] = Native::bytes($ffi, $path);
        $keep[] = $buf;
        $o->path = $ptr;
        $o->path_len = strlen($path);
        if ($pepper !== null) {
            [$buf, $ptr] = Native::bytes($ffi, $pepper);
            $keep[] = $buf;
            $o->pepper = $ffi->cast('uint8_t *', $ptr);
            $o->pepper_len = strlen($pepper);
        }
        if ($pepperFile !== null) {
            [$buf, $ptr] = Native::bytes($ffi, $pepperFile);
            $keep[] = $buf;
            $o->pepper_file = $ptr;
            $o->pepper_file_len = strlen($pepperFile);
        }
        if ($prefix !== null) {
            [$buf, $ptr] = Native::bytes($ffi, $prefix);
            $keep[] = $buf;
            $o->prefix = $ptr;
            $o->prefix_len = strlen($prefix);
        }
        $o->concurrency = $singleProcess ? Abi::KW_CONCURRENCY_SINGLE_PROCESS : Abi::KW_CONCURRENCY_MULTI_PROCESS;
        $o->flags = $persistent ? Abi::KW_OPEN_PERSISTENT : 0;
        if ($upstream !== null) {
            [$buf, $ptr] = Native::bytes($ffi, $upstream);
            $keep[] = $buf;
            $o->upstream = $ptr;
            $o->upstream_len = strlen($upstream);
            $o->flags |= Abi::KW_OPEN_UPSTREAM; // the library reads the upstream fields
        }
        $o->max_active_keys_per_owner = Native::u32($maxActiveKeysPerOwner, 'maxActiveKeysPerOwner');
        $o->keep_last_key = $keepLastKey ? 1 : 0;
        $o->max_lifetime_ms = Native::nonNegative($maxLifetimeMs, 'maxLifetimeMs');
        $o->flush_interval_ms = $flushIntervalMs;
        $o->index_capacity = Native::nonNegative($indexCapacity, 'indexCapacity');
        $handle = $ffi->new('kw_store');
        $status = $ffi->kw_open(FFI::addr($o), FFI::addr($handle));
        if ($pepper !== null) {
            FFI::memset($keep[1], 0, strlen($pepper)); // wipe the C copy of the pepper
        }
        if ($status !== Abi::KW_OK) {
            Native::fail($ffi, $status, "cannot open the key store '$path'");
        }
        return $handle->cdata;
    }

    /** Closes a handle of its own (open()); a persistent store's object closes nothing. */
    public function __destruct()
    {
        if ($this->envName === null && $this->handle !== 0) {
            $this->ffi()->kw_close($this->handle); // errors cannot be reported from a destructor: call close()
            $this->handle = 0;
        }
    }

    /**
     * Closes this handle; closing the store's last handle in this process flushes pending
     * usage and closes the store (other handles leave the flush to the background thread).
     * For a persistent store, also forgets the process's handle: the next persistent() call
     * opens a new one. Closing twice is a no-op; any other call after close() throws
     * ClosedException.
     *
     * @throws KeywardException when the final flush fails (the handle is closed anyway)
     */
    public function close(): void
    {
        if ($this->handle === 0) {
            return;
        }
        $handle = $this->handle;
        $this->handle = 0;
        if ($this->envName !== null) {
            Library::setProcessEnv($this->envName, null);
        }
        $status = $this->ffi()->kw_close($handle);
        if ($status !== Abi::KW_OK && $status !== Abi::KW_CLOSED) {
            Native::fail($this->ffi(), $status, "closing the key store '{$this->path}'");
        }
    }

    /** Whether close() was called. */
    public function isClosed(): bool
    {
        return $this->handle === 0;
    }

    /** Whether this is the process's persistent store (persistent()). */
    public function isPersistent(): bool
    {
        return $this->envName !== null;
    }

    /** The database path. */
    public function path(): string
    {
        return $this->path;
    }

    /** The C ABI handle (an opaque 64-bit value; 0 once closed). */
    public function handle(): int
    {
        return $this->handle;
    }

    /**
     * Writes all pending usage now.
     *
     * @return int the number of keys written
     * @throws KeywardException
     */
    public function flush(): int
    {
        $written = $this->ffi()->new('size_t');
        $this->check($this->ffi()->kw_flush($this->live(), FFI::addr($written)), 'kw_flush');
        return $written->cdata;
    }

    /**
     * This process's counters for the store.
     *
     * @throws KeywardException
     */
    public function stats(): StoreStats
    {
        $s = $this->ffi()->new('kw_store_stats');
        $this->check($this->ffi()->kw_stats($this->live(), FFI::addr($s)), 'kw_stats');
        $t = $this->ffi()->new('kw_store_table_stats');
        $this->check($this->ffi()->kw_table_stats($this->live(), FFI::addr($t)), 'kw_table_stats');
        $r = $this->ffi()->new('kw_store_replica_stats');
        $this->check($this->ffi()->kw_replica_stats($this->live(), FFI::addr($r)), 'kw_replica_stats');
        $replica = $r->is_replica === 0 ? null : [
            'cursor' => $r->cursor,
            'connected' => $r->connected !== 0,
            'syncedAtMs' => $r->synced_at_ms,
            'stalenessMs' => $r->staleness_ms < 0 ? null : $r->staleness_ms,
            'reportedAtMs' => $r->reported_at_ms,
        ];
        return new StoreStats($s->commits, $s->refreshes, $s->indexed_keys, $s->dirty_keys, $s->index_complete !== 0, [
            'generation' => $t->generation,
            'slots' => $t->slots,
            'keys' => $t->keys,
            'lookupBytes' => $t->lookup_bytes,
            'fileBytes' => $t->file_bytes,
            'cachedRecords' => $t->cached_records,
            'rebuilds' => $t->rebuilds,
            'slotsRepaired' => $t->slots_repaired,
            'mapped' => $t->mapped !== 0,
        ], $replica);
    }

    /**
     * Whether two open stores share one underlying store (same path opened in this process).
     *
     * @throws KeywardException
     */
    public function sameStore(Store $other): bool
    {
        $same = $this->ffi()->new('uint32_t');
        $this->check($this->ffi()->kw_same_store($this->live(), $other->live(), FFI::addr($same)), 'kw_same_store');
        return $same->cdata === 1;
    }

    // --- verify ---------------------------------------------------------------------------

    /**
     * Verifies a full key against the scopes a route requires (all needed).
     *
     * @param string $key the key as sent by the client (any text: garbage is MALFORMED)
     * @param list<string> $scopes required scopes (at most Abi::KW_MAX_SCOPES)
     * @param int $cost credits to spend if the key is limited (0 = the key's own cost)
     * @param int|\DateTimeInterface $at time to judge expiry at (ms since the epoch; 0 = now)
     * @param bool $withRecord also return the key's full record (Verdict::$record); slower
     * @param bool $dryRun check without consuming: the full verdict, but no use, refusal or
     *   last-used time is counted and no credit is spent (a limited key is VALID if the credits
     *   available now cover the cost, USAGE_EXCEEDED otherwise)
     * @throws KeywardException when the call itself fails (closed store, bad scopes, storage)
     */
    public function verify(
        #[\SensitiveParameter] string $key,
        array $scopes = [],
        int $cost = 0,
        int|\DateTimeInterface $at = 0,
        bool $withRecord = false,
        bool $dryRun = false,
    ): Verdict {
        if ($cost === 0 && $at === 0 && !$withRecord && !$dryRun) {
            // The hot path: kw_verify_key takes six arguments instead of eleven (PHP FFI
            // converts each one, ~25-40 ns apiece). Key text that is not UTF-8 is MALFORMED
            // there as in kw_verify; KW_INVALID_UTF8 can only be a scope's.
            $ptr = $this->verdictPtr ?? $this->verdictOut();
            if ($scopes === []) {
                $status = $this->ffi()->kw_verify_key_ex($this->handle, $key, strlen($key), null, 0, Abi::KW_VERIFY_RATE_FIELDS, $ptr);
            } else {
                [$scopePtr, $scopeCount] = $this->scopes($scopes);
                $status = $this->ffi()->kw_verify_key_ex($this->handle, $key, strlen($key), $scopePtr, $scopeCount,
                    Abi::KW_VERIFY_RATE_FIELDS, $ptr);
            }
            if ($status !== Abi::KW_OK) {
                $this->fail($status, 'kw_verify_key_ex');
            }
            return Verdict::fromVerify($this->ffi(), $this->verdict, $ptr);
        }
        $ffi = $this->ffi();
        $this->verdictPtr ?? $this->verdictOut();
        $v = $this->verdict;
        [$scopePtr, $scopeCount] = $scopes === [] ? [null, 0] : $this->scopes($scopes);
        if ($cost !== 0) {
            Native::u32($cost, 'cost');
        }
        $atMs = $at === 0 ? 0 : Native::ms($at);
        [$info, $cap, $infoLen] = $withRecord ? $this->infoBuffer() : [null, 0, null];
        $flags = Abi::KW_VERIFY_RATE_FIELDS | ($dryRun ? Abi::KW_VERIFY_DRY_RUN : 0);
        $status = $ffi->kw_verify_ex($this->handle, $key, strlen($key), $scopePtr, $scopeCount, $cost, $atMs,
            $flags, $this->verdictPtr, $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $this->fail($status, 'kw_verify_ex');
        }
        return Verdict::fromNative($ffi, $v, $withRecord ? $this->record('kw_verify') : null, $this->verdictPtr);
    }

    /**
     * Verifies a (public id, secret) pair, as sent in X-Api-Token-Id / X-Api-Token-Secret-Key
     * (the full key is also accepted as the secret when its id matches). Arguments as verify().
     *
     * @param list<string> $scopes
     * @throws KeywardException
     */
    public function verifyPair(
        string $id,
        #[\SensitiveParameter] string $secret,
        array $scopes = [],
        int $cost = 0,
        int|\DateTimeInterface $at = 0,
        bool $withRecord = false,
        bool $dryRun = false,
    ): Verdict {
        $ffi = $this->ffi();
        $v = $this->verdict ??= $ffi->new('kw_verdict');
        [$scopePtr, $scopeCount] = $scopes === [] ? [null, 0] : $this->scopes($scopes);
        [$info, $cap, $infoLen] = $withRecord ? $this->infoBuffer() : [null, 0, null];
        $status = $ffi->kw_verify_pair_ex($this->handle, $id, strlen($id), $secret, strlen($secret), $scopePtr,
            $scopeCount, Native::u32($cost, 'cost'), Native::ms($at),
            Abi::KW_VERIFY_RATE_FIELDS | ($dryRun ? Abi::KW_VERIFY_DRY_RUN : 0), FFI::addr($v), $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $this->fail($status, 'kw_verify_pair');
        }
        return Verdict::fromNative($ffi, $v, $withRecord ? $this->record('kw_verify_pair') : null);
    }

    /**
     * Finds the credential in request headers (x-api-key, Authorization: Bearer / Basic, or
     * the X-Api-Token-Id + X-Api-Token-Secret-Key pair) and verifies it. Whatever the client
     * sent, the answer is a Verdict: unreadable credentials (none, unsupported scheme, bad
     * base64, half a pair, several different keys, an oversize value) are a 401 verdict whose
     * code is the status name, e.g. CREDENTIAL_MISSING (the statuses of the credential
     * family). Exceptions are for the application's and the server's problems only.
     *
     * @param array<mixed> $headers list of [name, value] pairs, or name => value (or list of values)
     * @param list<string> $scopes
     * @throws KeywardException
     */
    public function verifyHeaders(
        #[\SensitiveParameter] array $headers,
        array $scopes = [],
        int $cost = 0,
        int|\DateTimeInterface $at = 0,
        bool $withRecord = false,
        bool $dryRun = false,
    ): Verdict {
        if ($at === 0 && !$withRecord && !$dryRun && self::credentialPairs($headers)) {
            return $this->verifyCredentials($headers, $scopes, $cost);
        }
        return $this->verifyHeaderArray($headers, $scopes, $cost, $at, $withRecord, $dryRun);
    }

    /**
     * This store's block for Native::writeHeaders(), at least $size bytes (made on first
     * use, grown when a request needs more), as the `kw_header *` argument.
     */
    private function headerBlock(int $size): CData
    {
        if ($size > $this->headerBlockSize) {
            $this->headerBlockSize = max($size, 1024);
            $this->headerBlock = ($this->ffi ?? $this->ffi())->new("char[{$this->headerBlockSize}]");
            $start = FFI::addr($this->headerBlock);
            $this->headerAddress = FFI::cast('uintptr_t', $start)->cdata;
            $this->headerArray = ($this->ffi ?? $this->ffi())->cast('kw_header *', $start);
        }
        return $this->headerArray;
    }

    /**
     * Whether $headers is a short list of [name, value] string pairs, the shape
     * verifyCredentials() takes (the library skips names that are no credential header).
     *
     * @param array<mixed> $headers
     */
    private static function credentialPairs(array $headers): bool
    {
        $n = count($headers);
        if ($n < 1 || $n > 16 || !array_is_list($headers)) {
            return false;
        }
        foreach ($headers as $pair) {
            if (!is_array($pair) || count($pair) !== 2 || !is_string($pair[0] ?? null) || !is_string($pair[1] ?? null)) {
                return false;
            }
        }
        return true;
    }

    /**
     * verifyHeaders() the general way: any shape of headers, a new kw_header array per call.
     *
     * @param array<mixed> $headers
     * @param list<string> $scopes
     * @throws KeywardException
     */
    private function verifyHeaderArray(
        #[\SensitiveParameter] array $headers,
        array $scopes,
        int $cost,
        int|\DateTimeInterface $at,
        bool $withRecord,
        bool $dryRun,
    ): Verdict {
        $ffi = $this->ffi();
        $v = $this->verdict ??= $ffi->new('kw_verdict');
        [$scopePtr, $scopeCount] = $scopes === [] ? [null, 0] : $this->scopes($scopes);
        $pairs = Native::headerPairs($headers);
        $headerCount = count($pairs);
        $headerPtr = $headerCount === 0 ? null : $this->headerBlock(Native::headerBlockSize($pairs));
        $size = $headerCount === 0 ? 0 : Native::writeHeaders($this->headerBlock, $this->headerAddress, $pairs);
        [$info, $cap, $infoLen] = $withRecord ? $this->infoBuffer() : [null, 0, null];
        $status = $ffi->kw_verify_headers_ex($this->live(), $headerPtr, $headerCount, $scopePtr, $scopeCount,
            Native::u32($cost, 'cost'), Native::ms($at), Abi::KW_VERIFY_RATE_FIELDS | ($dryRun ? Abi::KW_VERIFY_DRY_RUN : 0),
            FFI::addr($v), $info, $cap, $infoLen);
        if ($size > 0) {
            FFI::memset($this->headerBlock, 0, $size); // the C copy held the secret
        }
        if ($status === Abi::KW_OK) {
            return Verdict::fromNative($ffi, $v, $withRecord ? $this->record('kw_verify_headers') : null);
        }
        if ($ffi->kw_status_family($status) === Abi::KW_FAMILY_CREDENTIAL) {
            // A header problem is what the client sent: a 401 verdict, not an exception.
            return Verdict::credentialProblem($ffi, $status);
        }
        $this->fail($status, 'kw_verify_headers');
    }

    /**
     * verifyHeaders() for what Credentials::fromServer() / fromRequest() return, judged now,
     * without the record: the hot path of Middleware, Guard and the Laravel guard, and of
     * verifyHeaders() itself for one or two [name, value] pairs. The kw_header array, names
     * and values are one C block filled by a single copy (Native::headerBlock()).
     *
     * @internal
     * @param list<array{0: string, 1: string}> $headers
     * @param list<string> $scopes
     * @throws KeywardException
     */
    public function verifyCredentials(#[\SensitiveParameter] array $headers, array $scopes = [], int $cost = 0): Verdict
    {
        if ($cost !== 0) {
            Native::u32($cost, 'cost');
        }
        if ($this->extensionVerify !== 0) {
            $status = \keyward_native_verify($this->extensionVerify, $this->handle, $headers, $scopes, $cost, $raw);
            if ($status === Abi::KW_OK) {
                return Verdict::fromBytes($raw) ?? Verdict::fromBytesWithLibrary($this->ffi(), $raw);
            }
            if ($status !== \KEYWARD_NATIVE_UNSUPPORTED) {
                return $this->refusedOrFailed($status);
            }
            // arguments of another shape: the FFI path below reports what is wrong with them
        }
        $ffi = $this->ffi ?? $this->ffi();
        $ptr = $this->verdictPtr ?? $this->verdictOut();
        [$scopePtr, $scopeCount] = $scopes === [] ? [null, 0] : $this->scopes($scopes);
        $n = count($headers);
        if ($n === 0) {
            $status = $ffi->kw_verify_headers_ex($this->handle, null, 0, $scopePtr, $scopeCount, $cost, 0,
                Abi::KW_VERIFY_RATE_FIELDS, $ptr, null, 0, null);
        } else {
            $array = $this->headerBlock(Native::headerBlockSize($headers));
            $size = Native::writeHeaders($this->headerBlock, $this->headerAddress, $headers);
            $status = $ffi->kw_verify_headers_ex($this->handle, $array, $n, $scopePtr, $scopeCount, $cost, 0,
                Abi::KW_VERIFY_RATE_FIELDS, $ptr, null, 0, null);
            FFI::memset($this->headerBlock, 0, $size); // the C copy held the secret
        }
        if ($status === Abi::KW_OK) {
            return Verdict::fromVerify($ffi, $this->verdict, $ptr);
        }
        return $this->refusedOrFailed($status);
    }

    /**
     * verifyCredentials()'s answer to a status other than KW_OK: a 401 verdict for what the
     * client sent (a credential header problem), else the exception. Call it right after the
     * verify (Native::fail() reads the thread's last error message).
     *
     * @throws KeywardException
     */
    private function refusedOrFailed(int $status): Verdict
    {
        if ($this->ffi()->kw_status_family($status) === Abi::KW_FAMILY_CREDENTIAL) {
            return Verdict::credentialProblem($this->ffi(), $status);
        }
        $this->live(); // a closed store: ClosedException
        $this->fail($status, 'kw_verify_headers');
    }

    /**
     * verifyHeaders() on the credential headers of a PHP server array (default: $_SERVER),
     * as PHP-FPM, mod_php or the built-in server fill it (see Credentials::fromServer()).
     *
     * @param ?array<string, mixed> $server
     * @param list<string> $scopes
     * @throws KeywardException
     */
    public function verifyServer(
        #[\SensitiveParameter] ?array $server = null,
        array $scopes = [],
        int $cost = 0,
        int|\DateTimeInterface $at = 0,
        bool $withRecord = false,
    ): Verdict {
        return $this->verifyHeaders(Credentials::fromServer($server ?? $_SERVER), $scopes, $cost, $at, $withRecord);
    }

    /**
     * verifyHeaders() on the credential headers of a PSR-7 request or message.
     *
     * @param list<string> $scopes
     * @throws KeywardException
     */
    public function verifyRequest(
        MessageInterface $request,
        array $scopes = [],
        int $cost = 0,
        int|\DateTimeInterface $at = 0,
        bool $withRecord = false,
    ): Verdict {
        return $this->verifyHeaders(Credentials::fromRequest($request), $scopes, $cost, $at, $withRecord);
    }

    // --- management -----------------------------------------------------------------------

    /**
     * Creates a key. The full key is in the result, once: it is stored nowhere.
     *
     * @param string $owner account or workspace id (required, at most 128 bytes)
     * @param string $name human name
     * @param list<string> $scopes scopes granted
     * @param ?string $env env tag written into the key ([a-z0-9]{1,16}, e.g. "live"), null for none
     * @param string $metadata metadata bytes (often JSON, at most 4096 bytes)
     * @param int|\DateTimeInterface|null $expiresAt expiry (ms since the epoch or a date), null for never
     * @param ?Credits $credits usage credits, null for unlimited
     * @param ?RateLimit $rateLimit the key's own rate limit, null for none (set right after the
     *   create with kw_set_rate_limit; if that fails the new key is deleted and the error thrown)
     * @throws KeywardException (PolicyException when a store policy refuses it)
     */
    public function create(
        string $owner,
        string $name = '',
        array $scopes = [],
        ?string $env = null,
        string $metadata = '',
        int|\DateTimeInterface|null $expiresAt = null,
        ?Credits $credits = null,
        ?RateLimit $rateLimit = null,
    ): CreatedKey {
        $ffi = $this->ffi();
        $keep = [];
        $n = $ffi->new('kw_new_key');
        $this->fillNewKey($n, $owner, $name, $scopes, $env, $metadata, $expiresAt, $credits, $keep);
        $key = $ffi->new('uint8_t[' . Abi::KW_MAX_KEY_LEN . ']');
        $keyLen = $ffi->new('size_t');
        [$info, $cap, $infoLen] = $this->infoBuffer();
        $status = $ffi->kw_create($this->live(), FFI::addr($n), $key, Abi::KW_MAX_KEY_LEN, FFI::addr($keyLen), $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $this->fail($status, self::ctxOwner('kw_create', $owner));
        }
        $full = FFI::string($key, $keyLen->cdata);
        FFI::memset($key, 0, Abi::KW_MAX_KEY_LEN);
        $created = new CreatedKey($full, $this->requireRecord('kw_create'));
        if ($rateLimit === null) {
            return $created;
        }
        $id = $created->record->id;
        [$info, $cap, $infoLen] = $this->infoBuffer();
        $limit = $this->rateLimitStruct($rateLimit);
        $status = $ffi->kw_set_rate_limit($this->live(), $id, strlen($id), FFI::addr($limit), $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $ffi->kw_delete($this->live(), $id, strlen($id));
            $this->fail($status, self::ctxOwner('kw_set_rate_limit', $owner));
        }
        return new CreatedKey($full, $this->requireRecord('kw_set_rate_limit'));
    }

    private function rateLimitStruct(RateLimit $limit): CData
    {
        $c = $this->ffi()->new('kw_rate_limit');
        $c->rate = $limit->rate;
        $c->period_ms = $limit->periodMs;
        $c->burst = $limit->burst;
        return $c;
    }

    /**
     * Sets (or with null removes) the rate limit $owner shares among all of its keys; a key
     * with its own limit must pass both. Every worker of the host applies it from its next
     * verify.
     *
     * @throws KeywardException (ArgumentException for a blank owner or bad terms)
     */
    public function setOwnerRateLimit(string $owner, ?RateLimit $limit): void
    {
        $c = $limit === null ? null : $this->rateLimitStruct($limit);
        $status = $this->ffi()->kw_set_owner_rate_limit($this->live(), $owner, strlen($owner), $c === null ? null : FFI::addr($c));
        if ($status !== Abi::KW_OK) {
            $this->fail($status, self::ctxOwner('kw_set_owner_rate_limit', $owner));
        }
    }

    /** The rate limit $owner shares among its keys, or null. @throws KeywardException */
    public function ownerRateLimit(string $owner): ?RateLimit
    {
        $c = $this->ffi()->new('kw_rate_limit');
        $found = $this->ffi()->new('uint32_t');
        $status = $this->ffi()->kw_owner_rate_limit($this->live(), $owner, strlen($owner), FFI::addr($c), FFI::addr($found));
        if ($status !== Abi::KW_OK) {
            $this->fail($status, self::ctxOwner('kw_owner_rate_limit', $owner));
        }
        return $found->cdata === 0 ? null : new RateLimit($c->rate, $c->period_ms, $c->burst);
    }

    private const SPEC_FIELDS = ['owner', 'name', 'scopes', 'env', 'metadata', 'expiresAt', 'credits'];

    /**
     * Creates many keys in one durable transaction: all of them, or none. Much faster than
     * one create() per key. At most Abi::KW_MAX_CREATE_MANY (100,000) specs.
     *
     * Each spec is an array of create()'s named arguments: 'owner' (required), 'name',
     * 'scopes', 'env', 'metadata', 'expiresAt', 'credits'. Returns, in the order of $specs,
     * ['key' => full key (this once), 'id' => public id]. A refused spec throws what create()
     * would, with a message naming its index ("new key 3 of the batch (0-based) ..."), and
     * nothing is created.
     *
     * @param list<array<string, mixed>> $specs
     * @return list<array{key: string, id: string}>
     * @throws KeywardException
     */
    public function createMany(array $specs): array
    {
        $ffi = $this->ffi();
        $count = count($specs);
        // No specs: the library answers INVALID_ARGUMENT (arrays of one keep the pointers valid).
        $alloc = max($count, 1);
        $keep = [];
        $array = $ffi->new('kw_new_key[' . $alloc . ']');
        foreach (array_values($specs) as $i => $spec) {
            if (!is_array($spec)) {
                throw new \TypeError("createMany: spec $i must be an array, not " . get_debug_type($spec));
            }
            $unknown = array_diff(array_keys($spec), self::SPEC_FIELDS);
            if ($unknown !== []) {
                throw new \TypeError("createMany: spec $i has unknown field(s): " . implode(', ', $unknown));
            }
            if (!isset($spec['owner']) || !is_string($spec['owner'])) {
                throw new \TypeError("createMany: spec $i needs a string 'owner'");
            }
            $this->fillNewKey(
                $array[$i],
                $spec['owner'],
                $spec['name'] ?? '',
                $spec['scopes'] ?? [],
                $spec['env'] ?? null,
                $spec['metadata'] ?? '',
                $spec['expiresAt'] ?? null,
                $spec['credits'] ?? null,
                $keep,
            );
        }
        $out = $ffi->new('kw_created_key[' . $alloc . ']');
        $made = $ffi->new('size_t');
        $status = $ffi->kw_create_many($this->live(), $ffi->cast('kw_new_key *', FFI::addr($array[0])), $count, $ffi->cast('kw_created_key *', FFI::addr($out[0])), $count, FFI::addr($made));
        if ($status !== Abi::KW_OK) {
            $this->fail($status, 'kw_create_many');
        }
        $keys = [];
        for ($i = 0; $i < $count; $i++) {
            $keys[] = ['key' => FFI::string($out[$i]->key, $out[$i]->key_len), 'id' => FFI::string($out[$i]->id)];
        }
        FFI::memset($out, 0, FFI::sizeof($out));
        return $keys;
    }

    /** The systems importLegacy() reads, by name (kw_legacy_scheme). */
    public const LEGACY_SCHEMES = [
        'sanctum' => Abi::KW_LEGACY_SANCTUM,
        'drf' => Abi::KW_LEGACY_DRF,
        'unkey' => Abi::KW_LEGACY_UNKEY,
        'better-auth' => Abi::KW_LEGACY_BETTER_AUTH,
    ];

    private const LEGACY_OPTIONS = ['dryRun', 'sanctumExpirationMinutes', 'allScopes', 'defaultOwner'];

    private static function legacyScheme(string $from): int
    {
        if (!isset(self::LEGACY_SCHEMES[$from])) {
            throw new ArgumentException(Abi::KW_INVALID_ARGUMENT, 'INVALID_ARGUMENT',
                sprintf('unknown source %s: expected sanctum, drf, unkey or better-auth', json_encode($from)));
        }
        return self::LEGACY_SCHEMES[$from];
    }

    /**
     * Imports the keys another system issued, from its export (CSV with a header row, or
     * JSON lines; the columns are in README.md, "Migrating keys from another system"), so they
     * keep working as they are: no customer gets a new key. Each is upgraded to keyward's own
     * digest on its first successful verify. All or nothing: a row keyward cannot read throws
     * ArgumentException LEGACY_IMPORT_INVALID, whose message names the line.
     *
     * @param string $from 'sanctum', 'drf', 'unkey' or 'better-auth'
     * @param array{dryRun?: bool, sanctumExpirationMinutes?: ?int, allScopes?: ?list<string>, defaultOwner?: ?string} $options
     * @return array{scheme: string, dry_run: bool, rows: int, imported: int, already_present: int, deleted: int, revoked: int, expired: int}
     * @throws KeywardException
     */
    public function importLegacy(string $from, string $data, array $options = []): array
    {
        $ffi = $this->ffi();
        $scheme = self::legacyScheme($from);
        $unknown = array_diff(array_keys($options), self::LEGACY_OPTIONS);
        if ($unknown !== []) {
            throw new \TypeError('importLegacy: unknown option(s): ' . implode(', ', $unknown));
        }
        $keep = [];
        $o = $ffi->new('kw_legacy_import_options');
        $o->dry_run = ($options['dryRun'] ?? false) ? 1 : 0;
        $expiration = $options['sanctumExpirationMinutes'] ?? null;
        if ($expiration !== null) {
            Native::nonNegative($expiration, 'sanctumExpirationMinutes');
            $o->sanctum_expiration_minutes = $expiration;
        }
        $all = $options['allScopes'] ?? null;
        if ($all !== null) {
            [$ptr, $n] = Native::strings($ffi, $all, 'allScopes', $keep);
            if ($ptr === null) {
                // A present but empty list still needs a non-NULL pointer.
                $empty = $ffi->new('kw_str[1]');
                $keep[] = $empty;
                $ptr = FFI::addr($empty[0]);
            }
            $o->all_scopes = $ptr;
            $o->all_scopes_len = $n;
        }
        Native::setStr($ffi, $o->default_owner, $options['defaultOwner'] ?? null, $keep);
        [$buf, $bytes] = Native::bytes($ffi, $data);
        $report = $ffi->new('kw_legacy_import_report');
        $status = $ffi->kw_import_legacy($this->live(), $scheme, $ffi->cast('uint8_t *', $bytes), strlen($data), FFI::addr($o), FFI::addr($report));
        unset($buf, $keep);
        $this->check($status, "kw_import_legacy('$from')");
        return [
            'scheme' => $from,
            'dry_run' => $report->dry_run === 1,
            'rows' => $report->rows,
            'imported' => $report->imported,
            'already_present' => $report->already_present,
            'deleted' => $report->deleted,
            'revoked' => $report->revoked,
            'expired' => $report->expired,
        ];
    }

    /**
     * The public id keyward gives the key with id $sourceId in system $from (Sanctum: its
     * numeric id; DRF: its prefix; Unkey, Better Auth: its key id). The same on every import.
     *
     * @throws KeywardException
     */
    public static function legacyKeyId(string $from, string $sourceId): string
    {
        $ffi = Library::ffi();
        $out = $ffi->new('char[' . (Abi::KW_KEY_ID_LEN + 1) . ']');
        $status = $ffi->kw_legacy_key_id(self::legacyScheme($from), $sourceId, strlen($sourceId), $out);
        if ($status !== Abi::KW_OK) {
            Native::fail($ffi, $status, 'kw_legacy_key_id');
        }
        return FFI::string($out);
    }

    /**
     * Fills a kw_new_key (the buffers it points to are kept alive in $keep).
     *
     * @param list<string> $scopes
     * @param list<mixed> $keep
     */
    private function fillNewKey(
        CData $n,
        string $owner,
        string $name,
        array $scopes,
        ?string $env,
        string $metadata,
        int|\DateTimeInterface|null $expiresAt,
        ?Credits $credits,
        array &$keep,
    ): void {
        $ffi = $this->ffi();
        Native::setStr($ffi, $n->owner, $owner, $keep);
        Native::setStr($ffi, $n->name, $name === '' ? null : $name, $keep);
        [$n->scopes, $n->scopes_len] = Native::strings($ffi, $scopes, 'scopes', $keep);
        Native::setStr($ffi, $n->env, $env, $keep);
        if ($metadata !== '') {
            [$buf, $ptr] = Native::bytes($ffi, $metadata);
            $keep[] = $buf;
            $n->metadata = $ffi->cast('uint8_t *', $ptr);
            $n->metadata_len = strlen($metadata);
        }
        $n->expires_at_ms = $expiresAt === null ? 0 : Native::ms($expiresAt);
        if ($credits !== null) {
            $c = $this->creditsStruct($credits);
            $keep[] = $c;
            $n->credits = FFI::addr($c);
        }
    }

    /**
     * The public record of a key.
     *
     * @throws KeywardException (NotFoundException for an unknown id)
     */
    public function get(string $id): KeyRecord
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_get($handle, $id, strlen($id), $buf, $cap, $len), self::ctx('kw_get', $id), Abi::KW_KEY_INFO_MAX_LEN);
        return KeyRecord::fromArray($json);
    }

    /**
     * One page of an owner's keys, in creation order.
     *
     * @param int $after the previous page's $next (0 for the first page)
     * @param int $limit page size 1..1000 (0 = 100)
     * @param int $state STATE_ALL, STATE_ACTIVE, STATE_REVOKED or STATE_EXPIRED
     * @throws KeywardException
     */
    public function list(string $owner, int $after = 0, int $limit = 0, int $state = self::STATE_ALL): Page
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        Native::nonNegative($after, 'after');
        Native::u32($limit, 'limit');
        Native::u32($state, 'state');
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_list($handle, $owner, strlen($owner), $after, $limit, $state, $buf, $cap, $len), self::ctxOwner('kw_list', $owner));
        return new Page(array_map(KeyRecord::fromArray(...), $json['keys']), $json['next']);
    }

    /**
     * Every key of an owner, page after page.
     *
     * @return \Generator<int, KeyRecord>
     * @throws KeywardException
     */
    public function listAll(string $owner, int $state = self::STATE_ALL): \Generator
    {
        $after = 0;
        do {
            $page = $this->list($owner, $after, Abi::KW_MAX_PAGE_SIZE, $state);
            yield from $page->keys;
            $after = $page->next ?? 0;
        } while ($page->next !== null);
    }

    /**
     * A second handle onto the same store whose changes are stamped with $actor in the audit
     * log (the user, service or request the application acts for). It is closed by close()
     * or when the object is destroyed; an empty actor means none.
     *
     * @throws KeywardException (ArgumentException for a bad actor)
     */
    public function withActor(string $actor): self
    {
        $ffi = $this->ffi();
        $out = $ffi->new('kw_store');
        $this->check($ffi->kw_with_actor($this->live(), $actor, strlen($actor), FFI::addr($out)), 'kw_with_actor');
        return new self($ffi, (int) $out->cdata, $this->path, null);
    }

    /**
     * One page of audit events, oldest first, matching every filter given (null = any).
     *
     * @param int|\DateTimeInterface|null $since at or after (ms since the epoch)
     * @param int|\DateTimeInterface|null $until before (ms since the epoch)
     * @param int $after the previous page's $next (0 for the first page)
     * @param int $limit page size 1..1000 (0 = 100)
     * @throws KeywardException
     */
    public function audit(
        ?string $keyId = null,
        ?string $owner = null,
        ?string $actor = null,
        int|\DateTimeInterface|null $since = null,
        int|\DateTimeInterface|null $until = null,
        int $after = 0,
        int $limit = 0,
    ): AuditPage {
        $ffi = $this->ffi();
        $handle = $this->live();
        Native::nonNegative($after, 'after');
        Native::u32($limit, 'limit');
        $sinceMs = $since === null ? 0 : Native::ms($since);
        $untilMs = $until === null ? 0 : Native::ms($until);
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int => $ffi->kw_audit(
            $handle,
            $keyId,
            $keyId === null ? 0 : strlen($keyId),
            $owner,
            $owner === null ? 0 : strlen($owner),
            $actor,
            $actor === null ? 0 : strlen($actor),
            $sinceMs,
            $untilMs,
            $after,
            $limit,
            $buf,
            $cap,
            $len,
        ), 'kw_audit');
        return new AuditPage(array_map(AuditEvent::fromArray(...), $json['events']), $json['next']);
    }

    /**
     * Every audit event matching the filters, page after page.
     *
     * @return \Generator<int, AuditEvent>
     * @throws KeywardException
     */
    public function auditAll(
        ?string $keyId = null,
        ?string $owner = null,
        ?string $actor = null,
        int|\DateTimeInterface|null $since = null,
        int|\DateTimeInterface|null $until = null,
    ): \Generator {
        $after = 0;
        do {
            $page = $this->audit($keyId, $owner, $actor, $since, $until, $after, Abi::KW_MAX_PAGE_SIZE);
            yield from $page->events;
            $after = $page->next ?? 0;
        } while ($page->next !== null);
    }

    /**
     * Keeps $days days of audit events (0 = all); older ones are pruned by later writes.
     * Applies to every handle onto this store in this process.
     *
     * @throws KeywardException
     */
    public function setAuditRetention(int $days): void
    {
        Native::u32($days, 'days');
        $this->check($this->ffi()->kw_set_audit_retention($this->live(), $days), 'kw_set_audit_retention');
    }

    /**
     * Every key of the store, in creation order (export).
     *
     * @return list<KeyRecord>
     * @throws KeywardException
     */
    public function allKeys(): array
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_all_keys($handle, $buf, $cap, $len), 'kw_all_keys');
        return array_map(KeyRecord::fromArray(...), $json);
    }

    /**
     * Changes the given fields of a key (null = unchanged) and returns the new record.
     *
     * @param ?list<string> $scopes new scope set
     * @param int|\DateTimeInterface|null $expiresAt new expiry; 0 removes it
     * @param Credits|false|null $credits new credits; false makes the key unlimited
     * @param RateLimit|false|null $rateLimit new rate limit; false removes it (its own call,
     *   kw_set_rate_limit, after the other fields)
     * @throws KeywardException
     */
    public function update(
        string $id,
        ?string $name = null,
        ?array $scopes = null,
        ?string $metadata = null,
        int|\DateTimeInterface|null $expiresAt = null,
        Credits|false|null $credits = null,
        RateLimit|false|null $rateLimit = null,
    ): KeyRecord {
        $ffi = $this->ffi();
        if ($rateLimit !== null) {
            if ($name !== null || $scopes !== null || $metadata !== null || $expiresAt !== null || $credits !== null) {
                $this->update($id, $name, $scopes, $metadata, $expiresAt, $credits);
            }
            $c = $rateLimit === false ? null : $this->rateLimitStruct($rateLimit);
            [$info, $cap, $infoLen] = $this->infoBuffer();
            $status = $ffi->kw_set_rate_limit($this->live(), $id, strlen($id), $c === null ? null : FFI::addr($c), $info, $cap, $infoLen);
            if ($status !== Abi::KW_OK) {
                $this->fail($status, 'kw_set_rate_limit');
            }
            return $this->requireRecord('kw_set_rate_limit');
        }
        $keep = [];
        $u = $ffi->new('kw_key_update');
        $fields = 0;
        if ($name !== null) {
            $fields |= Abi::KW_UPDATE_NAME;
            Native::setStr($ffi, $u->name, $name, $keep);
        }
        if ($scopes !== null) {
            $fields |= Abi::KW_UPDATE_SCOPES;
            [$u->scopes, $u->scopes_len] = Native::strings($ffi, $scopes, 'scopes', $keep);
        }
        if ($metadata !== null) {
            $fields |= Abi::KW_UPDATE_METADATA;
            if ($metadata !== '') {
                [$buf, $ptr] = Native::bytes($ffi, $metadata);
                $keep[] = $buf;
                $u->metadata = $ffi->cast('uint8_t *', $ptr);
                $u->metadata_len = strlen($metadata);
            }
        }
        if ($expiresAt !== null) {
            $fields |= Abi::KW_UPDATE_EXPIRES_AT;
            $u->expires_at_ms = Native::ms($expiresAt);
        }
        if ($credits !== null) {
            $fields |= Abi::KW_UPDATE_CREDITS;
            if ($credits !== false) {
                $c = $this->creditsStruct($credits);
                $keep[] = $c;
                $u->credits = FFI::addr($c);
            }
        }
        $u->fields = $fields;
        [$info, $cap, $infoLen] = $this->infoBuffer();
        $status = $ffi->kw_update($this->live(), $id, strlen($id), FFI::addr($u), $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $this->fail($status, self::ctx('kw_update', $id));
        }
        return $this->requireRecord('kw_update');
    }

    /**
     * Revokes a key for good: every process refuses it from its next verify on. Revoking a
     * revoked key changes nothing.
     *
     * @param ?string $reason optional note (at most 512 bytes), kept in the record
     * @throws KeywardException (NotFoundException; PolicyException with keepLastKey)
     */
    public function revoke(string $id, ?string $reason = null): KeyRecord
    {
        $ffi = $this->ffi();
        [$info, $cap, $infoLen] = $this->infoBuffer();
        $status = $ffi->kw_revoke($this->live(), $id, strlen($id), $reason, $reason === null ? 0 : strlen($reason), $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $this->fail($status, self::ctx('kw_revoke', $id));
        }
        return $this->requireRecord('kw_revoke');
    }

    /**
     * Suspends an owner: every key of it is refused with OWNER_SUSPENDED (HTTP 403) from the
     * next verify in every process, until resumeOwner(). Suspending a suspended owner changes
     * nothing. Audited (owner_suspend).
     *
     * @throws KeywardException (ArgumentException for a blank or over-long owner)
     */
    public function suspendOwner(string $owner, ?string $reason = null): OwnerInfo
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        return OwnerInfo::fromArray(Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_owner_suspend($handle, $owner, strlen($owner), $reason, $reason === null ? 0 : strlen($reason), $buf, $cap, $len),
            self::ctxOwner('kw_owner_suspend', $owner), Abi::KW_OWNER_INFO_MAX_LEN));
    }

    /**
     * Resumes a suspended owner (changes nothing if it is not suspended). Audited
     * (owner_resume).
     *
     * @throws KeywardException (NotFoundException, code OWNER_NOT_FOUND, for an owner with
     *         neither a record nor keys)
     */
    public function resumeOwner(string $owner): OwnerInfo
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        return OwnerInfo::fromArray(Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_owner_resume($handle, $owner, strlen($owner), $buf, $cap, $len),
            self::ctxOwner('kw_owner_resume', $owner), Abi::KW_OWNER_INFO_MAX_LEN));
    }

    /**
     * Sets the scopes an owner's keys may use (null: unrestricted). A key's effective scopes,
     * checked and reported by verify, are its own within these, from the next verify in every
     * process. Audited (owner_scopes).
     *
     * @param ?list<string> $scopes
     * @throws KeywardException
     */
    public function setOwnerScopes(string $owner, ?array $scopes): OwnerInfo
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $keep = [];
        [$ptr, $count] = $scopes === null ? [null, 0] : Native::strings($ffi, $scopes, 'scopes', $keep);
        $clear = $scopes === null ? 1 : 0;
        return OwnerInfo::fromArray(Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_owner_set_scopes($handle, $owner, strlen($owner), $ptr, $count, $clear, $buf, $cap, $len),
            self::ctxOwner('kw_owner_set_scopes', $owner), Abi::KW_OWNER_INFO_MAX_LEN));
    }

    /**
     * An owner's controls and key count.
     *
     * @throws KeywardException (NotFoundException, code OWNER_NOT_FOUND)
     */
    public function owner(string $owner): OwnerInfo
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        return OwnerInfo::fromArray(Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_owner_get($handle, $owner, strlen($owner), $buf, $cap, $len),
            self::ctxOwner('kw_owner_get', $owner), Abi::KW_OWNER_INFO_MAX_LEN));
    }

    /**
     * Every owner record (owners ever suspended or given allowed scopes), by owner.
     *
     * @return list<OwnerInfo>
     * @throws KeywardException
     */
    public function owners(): array
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_owners_list($handle, $buf, $cap, $len), 'kw_owners_list');
        return array_values(array_map(OwnerInfo::fromArray(...), $json));
    }

    /**
     * Deletes a key and its usage history.
     *
     * @throws KeywardException (NotFoundException; PolicyException with keepLastKey)
     */
    public function delete(string $id): void
    {
        $this->check($this->ffi()->kw_delete($this->live(), $id, strlen($id)), self::ctx('kw_delete', $id));
    }

    /**
     * Replaces a key with a new one (same owner, name, scopes, env, metadata, lifetime length,
     * remaining credits). The old key stays valid for $graceMs (0: refused at once).
     *
     * @throws KeywardException (NotFoundException; ArgumentException for a revoked key)
     */
    public function rotate(string $id, int $graceMs = Abi::KW_DEFAULT_ROTATION_GRACE_MS): CreatedKey
    {
        $ffi = $this->ffi();
        Native::nonNegative($graceMs, 'graceMs');
        $key = $ffi->new('uint8_t[' . Abi::KW_MAX_KEY_LEN . ']');
        $keyLen = $ffi->new('size_t');
        [$info, $cap, $infoLen] = $this->infoBuffer();
        $status = $ffi->kw_rotate($this->live(), $id, strlen($id), $graceMs, $key, Abi::KW_MAX_KEY_LEN, FFI::addr($keyLen), $info, $cap, $infoLen);
        if ($status !== Abi::KW_OK) {
            $this->fail($status, self::ctx('kw_rotate', $id));
        }
        $full = FFI::string($key, $keyLen->cdata);
        FFI::memset($key, 0, Abi::KW_MAX_KEY_LEN);
        return new CreatedKey($full, $this->requireRecord('kw_rotate'));
    }

    // --- usage ----------------------------------------------------------------------------

    /**
     * A key's usage: what is stored plus what this process has not flushed yet.
     *
     * @throws KeywardException
     */
    public function usage(string $id): UsageStats
    {
        $u = $this->ffi()->new('kw_usage_stats');
        $this->check($this->ffi()->kw_usage($this->live(), $id, strlen($id), FFI::addr($u)), self::ctx('kw_usage', $id));
        return new UsageStats($u->uses, $u->refused, $u->last_used_ms === 0 ? null : $u->last_used_ms);
    }

    /**
     * Uses per UTC day from $from to $to inclusive (days without use omitted). Flushed counts
     * only: call flush() first for this process's latest.
     *
     * @param int|\DateTimeInterface $from first day: a date, or days since 1970-01-01
     * @param int|\DateTimeInterface $to last day (at most 3660 days after $from)
     * @return array<string, int> "YYYY-MM-DD" => uses
     * @throws KeywardException
     */
    public function usageByDay(string $id, int|\DateTimeInterface $from, int|\DateTimeInterface $to): array
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $fromDay = self::day($from);
        $toDay = self::day($to);
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_usage_by_day($handle, $id, strlen($id), $fromDay, $toDay, $buf, $cap, $len), self::ctx('kw_usage_by_day', $id), 4096);
        $days = [];
        foreach ($json as $row) {
            $days[$row['day']] = $row['uses'];
        }
        return $days;
    }

    /**
     * An owner's keys not used since $since (never used, or last used before it), oldest first.
     *
     * @return list<KeyRecord>
     * @throws KeywardException
     */
    public function unusedSince(string $owner, int|\DateTimeInterface $since): array
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $sinceMs = Native::ms($since);
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_unused_since($handle, $owner, strlen($owner), $sinceMs, $buf, $cap, $len), self::ctxOwner('kw_unused_since', $owner));
        return array_map(KeyRecord::fromArray(...), $json);
    }

    /**
     * Active keys (neither revoked nor expired, not rotated away) whose expiry falls within
     * $withinMs from now, soonest first: keys to warn about.
     *
     * @return list<KeyRecord>
     * @throws KeywardException
     */
    public function expiringWithin(int $withinMs): array
    {
        $ffi = $this->ffi();
        $handle = $this->live();
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_expiring_within($handle, $withinMs, $buf, $cap, $len), 'kw_expiring_within');
        return array_map(KeyRecord::fromArray(...), $json);
    }

    /**
     * Active limited keys (not rotated away) with fewer than $threshold credits left now,
     * fewest first: keys to warn about.
     *
     * @return list<array{record: KeyRecord, remaining: int}>
     * @throws KeywardException
     */
    public function creditsBelow(int $threshold): array
    {
        if ($threshold < 0) {
            throw new \ValueError('keyward: threshold must not be negative');
        }
        $ffi = $this->ffi();
        $handle = $this->live();
        $json = Native::json($ffi, fn (CData $buf, int $cap, CData $len): int =>
            $ffi->kw_credits_below($handle, $threshold, $buf, $cap, $len), 'kw_credits_below');
        return array_map(fn (array $e): array => ['record' => KeyRecord::fromArray($e['key']), 'remaining' => (int) $e['remaining']], $json);
    }

    /**
     * A key's usage credits now.
     *
     * @throws KeywardException
     */
    public function credits(string $id): CreditBalance
    {
        $b = $this->ffi()->new('kw_credit_balance');
        $this->check($this->ffi()->kw_key_credits($this->live(), $id, strlen($id), FFI::addr($b)), self::ctx('kw_key_credits', $id));
        return new CreditBalance($b->limited !== 0, $b->remaining, $b->cost, $b->refill_amount, $b->refill_interval);
    }

    /**
     * kw_release_persistent(): releases every store this process pinned (open(pin: true)):
     * a pinned store without open handles is flushed and closed now, one with open handles
     * closes with its last close(). Registered at exit automatically; call it for an orderly
     * shutdown of your own.
     *
     * @throws KeywardException the first flush error (every store is released regardless)
     */
    public static function releasePersistent(): void
    {
        $ffi = Library::ffi();
        $status = $ffi->kw_release_persistent();
        if ($status !== Abi::KW_OK) {
            Native::fail($ffi, $status, 'kw_release_persistent');
        }
    }

    /** Days since 1970-01-01 (UTC) of a date; an int is taken as a day number already. */
    public static function day(int|\DateTimeInterface $day): int
    {
        if (is_int($day)) {
            return $day;
        }
        return (int) floor(Native::ms($day) / 86_400_000);
    }

    // --- internals ------------------------------------------------------------------------

    /** The library this store's handle belongs to (Library::ffi() when the store was made without it). */
    private function ffi(): FFI
    {
        return $this->ffi ??= Library::ffi();
    }

    /** The handle, or ClosedException after close(). */
    /** The kw_verdict every verify of this store fills (allocated on first use). */
    private function verdictOut(): CData
    {
        $this->verdict = ($this->ffi ?? $this->ffi())->new('kw_verdict');
        return $this->verdictPtr = FFI::addr($this->verdict);
    }

    private function live(): int
    {
        if ($this->handle === 0) {
            throw new ClosedException(Abi::KW_CLOSED, 'CLOSED', "the key store '{$this->path}' is closed");
        }
        return $this->handle;
    }

    private function check(int $status, string $context): void
    {
        if ($status !== Abi::KW_OK) {
            $this->fail($status, $context);
        }
    }

    private function fail(int $status, string $context): never
    {
        if ($this->handle === 0) {
            $this->live(); // a clearer message than the library's for a closed store
        }
        Native::fail($this->ffi(), $status, $context);
    }

    /**
     * "kw_get('3hZ0bq9XcV1mT7pK')": context for messages. An id is shown only when it looks
     * like one (base62, at most 32 characters); anything else, such as a full key passed by
     * mistake, is shown as its length only, so a secret never reaches a log through an
     * exception message.
     */
    private static function ctx(string $call, string $id): string
    {
        return preg_match('/^[0-9A-Za-z]{1,32}$/D', $id) === 1 ? "$call('$id')" : sprintf('%s(<%d bytes>)', $call, strlen($id));
    }

    /** "kw_list('acct_42')": an owner (not a secret) in a message, shortened and printable. */
    private static function ctxOwner(string $call, string $owner): string
    {
        $shown = preg_replace('/[^\x20-\x7e]/', '?', strlen($owner) > 40 ? substr($owner, 0, 40) . '...' : $owner);
        return "$call('$shown')";
    }

    /**
     * Scope arrays are cached per Store object: a route verifies with the same scopes again
     * and again, and building the C array is most of the cost of passing them.
     *
     * @param array<mixed> $scopes
     * @return array{0: ?CData, 1: int}
     */
    private function scopes(array $scopes): array
    {
        if ($scopes === $this->lastScopes) { // a route's literal list: usually the same array
            return $this->lastScopeArgs;
        }
        $this->lastScopes = null;
        $cacheKey = '';
        foreach ($scopes as $scope) {
            if (!is_string($scope)) {
                $cacheKey = null;
                break;
            }
            $cacheKey .= $scope . "\0";
        }
        if ($cacheKey !== null && isset($this->scopeCache[$cacheKey])) {
            $hit = $this->scopeCache[$cacheKey];
            $this->lastScopes = $scopes;
            $this->lastScopeEntry = $hit; // keeps the strings alive if the cache is reset
            return $this->lastScopeArgs = [$hit[0], $hit[1]];
        }
        $keep = [];
        [$ptr, $count] = Native::strings(($this->ffi ?? $this->ffi()), $scopes, 'scopes', $keep);
        if (count($this->scopeCache) >= 64) {
            $this->scopeCache = [];
        }
        $this->scopeCache[(string) $cacheKey] = [$ptr, $count, $keep];
        return [$ptr, $count];
    }

    /** @return array{0: CData, 1: int, 2: CData} the record buffer, its capacity, its length pointer */
    private function infoBuffer(): array
    {
        $this->info ??= $this->ffi()->new('uint8_t[' . Abi::KW_KEY_INFO_MAX_LEN . ']');
        $this->infoLen ??= $this->ffi()->new('size_t');
        return [$this->info, Abi::KW_KEY_INFO_MAX_LEN, FFI::addr($this->infoLen)];
    }

    /** The record the last call wrote to the info buffer, or null when it wrote none. */
    private function record(string $context): ?KeyRecord
    {
        $len = $this->infoLen?->cdata ?? 0;
        if ($len === 0) {
            return null;
        }
        $this->infoLen->cdata = 0;
        return KeyRecord::fromArray(Native::decode(FFI::string($this->info, $len), $context));
    }

    /** The record the last management call wrote (it always writes one). */
    private function requireRecord(string $context): KeyRecord
    {
        return $this->record($context)
            ?? throw new InternalException(Abi::KW_PANIC, 'PANIC', "$context: the library wrote no key record");
    }

    private function creditsStruct(Credits $credits): CData
    {
        $c = $this->ffi()->new('kw_credits');
        $c->remaining = $credits->remaining;
        $c->refill_amount = $credits->refillAmount;
        $c->refill_interval = $credits->refillInterval;
        $c->cost = $credits->cost;
        return $c;
    }
}
