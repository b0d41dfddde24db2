<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Abi;
use Keyward\CreatedKey;
use Keyward\Credential;
use Keyward\Credits;
use Keyward\Exception\ArgumentException;
use Keyward\Exception\CredentialException;
use Keyward\Exception\KeywardException;
use Keyward\Keyward;
use Keyward\Library;
use Keyward\Store;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * Replays the shared test vectors tests/vectors/{keys,headers,verify,edge}.json (the same
 * files the Rust, C, CLI, Python and Node suites replay).
 */
final class VectorsTest extends TestCase
{
    use TempStores;

    private static function vectors(string $name): array
    {
        $file = dirname(__DIR__, 4) . "/tests/vectors/$name.json";
        self::assertFileExists($file);
        return json_decode((string) file_get_contents($file), true, 512, JSON_THROW_ON_ERROR);
    }

    /** @return iterable<string, array{array<string, mixed>, string}> */
    public static function keyCases(): iterable
    {
        $vectors = self::vectors('keys');
        foreach ($vectors['cases'] as $case) {
            yield $case['name'] => [$case, $vectors['prefix']];
        }
    }

    /** @dataProvider keyCases */
    public function testKeyVector(array $case, string $prefix): void
    {
        $parsed = Keyward::parseKey($case['key'], $prefix);
        self::assertSame($case['valid'], $parsed->valid);
        if ($case['valid']) {
            self::assertSame('ok', $parsed->error);
            self::assertSame($prefix, $parsed->prefix);
            self::assertSame($case['env'], $parsed->env);
            self::assertSame($case['id'], $parsed->id);
            self::assertSame($case['secret'], $parsed->secret);
        } else {
            self::assertSame($case['error'], $parsed->error);
            self::assertSame($case['error'], Keyward::keyErrorName($parsed->errorCode));
            self::assertNull($parsed->id);
            self::assertNull($parsed->secret);
        }
    }

    public function testKeyVectorLayoutMatchesTheAbi(): void
    {
        $layout = self::vectors('keys')['layout'];
        self::assertSame(\Keyward\Abi::KW_KEY_ID_LEN, $layout['id_len']);
        self::assertSame(\Keyward\Abi::KW_SECRET_LEN, $layout['secret_len']);
    }

    /** @return iterable<string, array{array<string, mixed>}> */
    public static function headerCases(): iterable
    {
        foreach (self::vectors('headers')['cases'] as $case) {
            yield $case['name'] => [$case];
        }
    }

    /** @dataProvider headerCases */
    public function testHeaderVectorExtraction(array $case): void
    {
        $expect = $case['expect'];
        try {
            $credential = Keyward::extractCredential($case['headers']);
        } catch (KeywardException $e) {
            self::assertArrayHasKey('error', $expect, 'unexpected failure: ' . $e->getMessage());
            self::assertSame($expect['error'], $e->getStatusName());
            return;
        }
        self::assertArrayNotHasKey('error', $expect, 'expected ' . ($expect['error'] ?? ''));
        if (isset($expect['key'])) {
            self::assertSame(Credential::KEY, $credential->kind);
            self::assertSame($expect['key'], $credential->secret);
            self::assertNull($credential->id);
        } else {
            self::assertSame(Credential::PAIR, $credential->kind);
            self::assertSame($expect['pair']['id'], $credential->id);
            self::assertSame($expect['pair']['secret'], $credential->secret);
        }
    }

    /**
     * verifyHeaders() on the same headers: a header problem is a 401 verdict with the status
     * name as code; a found credential is judged as verify() judges it.
     *
     * @dataProvider headerCases
     */
    public function testHeaderVectorVerification(array $case): void
    {
        $store = self::newStore('headers');
        $verdict = $store->verifyHeaders($case['headers']);
        $expect = $case['expect'];
        self::assertFalse($verdict->valid); // nothing is stored
        self::assertSame(401, $verdict->httpStatus);
        if (isset($expect['error'])) {
            self::assertSame($expect['error'], $verdict->code);
            self::assertNull($verdict->reason);
        } elseif (isset($expect['key'])) {
            self::assertSame($store->verify($expect['key'])->code, $verdict->code);
        } else {
            self::assertSame($store->verifyPair($expect['pair']['id'], $expect['pair']['secret'])->code, $verdict->code);
        }
        $store->close();
    }

    /** @return iterable<string, array{array<string, mixed>}> */
    public static function verifyScenarios(): iterable
    {
        foreach (self::vectors('verify')['scenarios'] as $scenario) {
            yield $scenario['name'] => [$scenario];
        }
    }

    /**
     * Replays a scenario against a fresh store with prefix kw. "The time the scenario
     * started" is taken at its first verify, after the keys it needs were created or rotated
     * (as the C replay does: with the wall clock, a rotation without grace expires the old
     * key from the moment it was committed).
     *
     * @dataProvider verifyScenarios
     */
    public function testVerifyScenario(array $scenario): void
    {
        $store = self::newStore('verify', prefix: 'kw');
        $keys = [];
        $start = null;
        foreach ($scenario['steps'] as $i => $step) {
            $where = "{$scenario['name']}, step $i ({$step['op']})";
            switch ($step['op']) {
                case 'create':
                    $credits = isset($step['credits']) ? new Credits($step['credits']['remaining'], $step['credits']['cost'] ?? 1) : null;
                    $expires = isset($step['expires_in_ms']) ? (int) floor(microtime(true) * 1000) + $step['expires_in_ms'] : null;
                    $rate = isset($step['rate_limit'])
                        ? new \Keyward\RateLimit($step['rate_limit']['rate'], $step['rate_limit']['period_ms'], $step['rate_limit']['burst'])
                        : null;
                    $keys[$step['as']] = $store->create($step['owner'], scopes: $step['scopes'], env: $step['env'] ?? null,
                        expiresAt: $expires, credits: $credits, rateLimit: $rate)->key;
                    break;
                case 'revoke':
                    $store->revoke(Keyward::parseKey($keys[$step['key']])->id);
                    break;
                case 'rotate':
                    $keys[$step['as']] = $store->rotate(Keyward::parseKey($keys[$step['key']])->id, $step['grace_ms'])->key;
                    break;
                case 'import_legacy':
                    $report = $store->importLegacy($step['from'], $step['data'], [
                        'allScopes' => $step['options']['all_scopes'] ?? null,
                        'defaultOwner' => $step['options']['default_owner'] ?? null,
                    ]);
                    self::assertSame($step['imported'], $report['imported'], $where);
                    break;
                case 'owner_suspend':
                    $store->suspendOwner($step['owner']);
                    break;
                case 'owner_resume':
                    $store->resumeOwner($step['owner']);
                    break;
                case 'owner_scopes':
                    $store->setOwnerScopes($step['owner'], ($step['clear'] ?? false) ? null : $step['scopes']);
                    break;
                case 'verify':
                case 'verify_text':
                case 'pair':
                    $start ??= (int) floor(microtime(true) * 1000);
                    $at = $start + ($step['at_offset_ms'] ?? 0);
                    if ($step['op'] === 'verify_text') {
                        $verdict = $store->verify($step['text'], $step['scopes'], at: $at);
                    } elseif ($step['op'] === 'verify') {
                        $verdict = $store->verify($keys[$step['key']], $step['scopes'], $step['cost'] ?? 0, $at,
                            withRecord: isset($step['expect_scopes']), dryRun: $step['dry_run'] ?? false);
                        if (isset($step['expect_scopes'])) {
                            self::assertSame($step['expect_scopes'], $verdict->record?->scopes, "$where (effective scopes)");
                        }
                    } else {
                        $parsed = Keyward::parseKey($keys[$step['key']]);
                        [$id, $secret] = [$parsed->id, $parsed->secret];
                        $flip = static fn (string $c): string => $c === 'a' ? 'b' : 'a';
                        match ($step['mutate'] ?? null) {
                            'wrong_secret_first' => $secret = $flip($secret[0]) . substr($secret, 1),
                            'wrong_secret_last' => $secret = substr($secret, 0, -1) . $flip($secret[-1]),
                            'unknown_id' => $id = 'ZZZZzzzz00009999',
                            null => null,
                        };
                        $verdict = $store->verifyPair($id, $secret, $step['scopes'], at: $at);
                    }
                    self::assertSame($step['expect'], $verdict->code, $where);
                    self::assertSame($step['expect'] === 'VALID', $verdict->valid, $where);
                    self::assertSame(Keyward::reasonHttpStatus($verdict->reason), $verdict->httpStatus, $where);
                    break;
                default:
                    self::fail("unknown op in $where");
            }
        }
        $store->close();
    }

    public function testEveryScenarioOpIsKnown(): void
    {
        $ops = [];
        foreach (self::vectors('verify')['scenarios'] as $scenario) {
            foreach ($scenario['steps'] as $step) {
                $ops[$step['op']] = true;
            }
        }
        self::assertEqualsCanonicalizing(['create', 'verify', 'pair', 'verify_text', 'revoke', 'rotate', 'import_legacy',
            'owner_suspend', 'owner_resume', 'owner_scopes'], array_keys($ops));
    }

    /** A text of edge.json: a JSON string, or {"hex": ...} for bytes that are not UTF-8 or hold a NUL. */
    private static function edgeText(string|array $value): string
    {
        return is_string($value) ? $value : (string) hex2bin($value['hex']);
    }

    /**
     * What a call answered, in edge.json's terms: ['verdict', code, http status],
     * ['error', family, status name] or ['created'].
     *
     * @return list<int|string>
     */
    private static function edgeOutcome(callable $call): array
    {
        try {
            $result = $call();
        } catch (KeywardException $e) {
            $family = match (Library::ffi()->kw_status_family($e->getCode())) {
                Abi::KW_FAMILY_ARGUMENT => 'ARGUMENT',
                Abi::KW_FAMILY_CREDENTIAL => 'CREDENTIAL',
                default => 'OTHER',
            };
            $class = ['ARGUMENT' => ArgumentException::class, 'CREDENTIAL' => CredentialException::class][$family] ?? KeywardException::class;
            self::assertInstanceOf($class, $e, $e->getMessage());
            return ['error', $family, $e->getStatusName()];
        }
        if ($result instanceof CreatedKey) {
            return ['created'];
        }
        return ['verdict', $result->code, $result->httpStatus];
    }

    /**
     * The expected outcome; $style 'verdict' for calls that answer a request (verifyHeaders),
     * 'error' for the others.
     *
     * @param array<string, mixed> $expect
     * @return list<int|string>
     */
    private static function edgeExpected(array $expect, string $style): array
    {
        if (!empty($expect['created'])) {
            return ['created'];
        }
        if (isset($expect['reason'])) {
            return ['verdict', $expect['reason'], $expect['http_status']];
        }
        if ($expect['family'] === 'CREDENTIAL' && $style === 'verdict') {
            return ['verdict', $expect['code'], $expect['http_status']];
        }
        return ['error', $expect['family'], $expect['status'] ?? $expect['code']];
    }

    /**
     * Replays edge.json: a key through verify() (the kw_verify_key hot path, and kw_verify
     * with withRecord), a pair through verifyPair(), headers through verifyHeaders() (a header
     * problem is a 401 verdict) and Keyward::extractCredential() (a CredentialException), and
     * create(). Counts the cases run against the number edge.json records for the php door.
     */
    public function testEdgeVectors(): void
    {
        $edge = self::vectors('edge');
        $store = self::newStore('edge', prefix: 'kw');
        $run = 0;
        foreach ($edge['cases'] as $case) {
            if (!in_array('php', $case['doors'], true)) {
                continue;
            }
            $name = $case['name'];
            $scopes = array_map(self::edgeText(...), $case['scopes']);
            $calls = []; // name => [style, callable]
            switch ($case['op']) {
                case 'verify':
                    $key = self::edgeText($case['key']);
                    $calls['verify'] = ['error', fn () => $store->verify($key, $scopes)];
                    $calls['verify(withRecord)'] = ['error', fn () => $store->verify($key, $scopes, withRecord: true)];
                    break;
                case 'pair':
                    [$id, $secret] = [self::edgeText($case['id']), self::edgeText($case['secret'])];
                    $calls['verifyPair'] = ['error', fn () => $store->verifyPair($id, $secret, $scopes)];
                    break;
                case 'headers':
                    $one = array_map(fn (array $h) => [self::edgeText($h[0]), self::edgeText($h[1])], $case['headers']);
                    $headers = array_merge(...array_fill(0, $case['repeat'] ?? 1, $one));
                    $calls['verifyHeaders'] = ['verdict', fn () => $store->verifyHeaders($headers, $scopes)];
                    if (($case['expect']['family'] ?? null) === 'CREDENTIAL') {
                        $calls['extractCredential'] = ['error', fn () => Keyward::extractCredential($headers)];
                    } elseif (isset($case['expect']['reason'])) {
                        self::assertInstanceOf(Credential::class, Keyward::extractCredential($headers), $name);
                    }
                    break;
                case 'create':
                    $owner = self::edgeText($case['owner']);
                    $calls['create'] = ['error', fn () => $store->create($owner, scopes: $scopes)];
                    break;
                default:
                    self::fail("$name: unknown op {$case['op']}");
            }
            foreach ($calls as $call => [$style, $fn]) {
                self::assertSame(self::edgeExpected($case['expect'], $style), self::edgeOutcome($fn), "$name ($call)");
            }
            $run++;
        }
        $store->close();
        self::assertSame($edge['applicable']['php'], $run, 'edge cases run by the php door');
        self::assertSame(count(array_filter($edge['cases'], fn (array $c) => in_array('php', $c['doors'], true))), $run);
    }
}
