<?php

declare(strict_types=1);

namespace Keyward\Tests\Laravel;

use App\Models\User;
use Illuminate\Contracts\Auth\Guard as GuardContract;
use Keyward\Credits;
use Keyward\Keyward;
use Keyward\Laravel\KeyOwner;
use Keyward\Laravel\KeywardGuard;
use Keyward\Laravel\Responses;
use Keyward\Middleware;
use Keyward\Store;
use Keyward\Tests\TempStores;
use Keyward\Verdict;
use Nyholm\Psr7\Factory\Psr17Factory;
use PHPUnit\Framework\TestCase;
use Symfony\Component\HttpFoundation\Response;

/**
 * The Laravel integration in a real Laravel 8 application (Debian's php-laravel-framework):
 * requests through the HTTP kernel, `auth:keyward` (Laravel's Authenticate middleware and the
 * keyward driver), `abilities:` / `ability:` (keyward's CheckAbilities / CheckForAnyAbility),
 * the Eloquent user provider on SQLite, the README's routes and User model, with every
 * credential style the engine reads.
 */
final class LaravelTest extends TestCase
{
    use TempStores;

    private static ?LaravelApp $laravel = null;
    private static Store $store;
    /** @var array<string, string> */
    private static array $keys = [];
    /** @var array<string, string> key name => key id */
    private static array $ids = [];

    public static function setUpBeforeClass(): void
    {
        if (!LaravelApp::available()) {
            return;
        }
        LaravelApp::autoload();
        $path = self::newPath('laravel');
        self::$laravel = new LaravelApp(dirname($path) . '/app', ['store' => $path]);
        self::$store = self::$laravel->app->make(Store::class);
        foreach ([1 => 'ada', 2 => 'bob'] as $id => $name) {
            User::forceCreate(['id' => $id, 'name' => $name, 'email' => "$name@example.com", 'password' => '-']);
        }
        $ada = User::find(1);
        foreach (['read' => ['invoices:read'], 'write' => ['invoices:write'], 'admin' => ['admin', 'keys:create'], 'none' => []] as $name => $scopes) {
            $created = $ada->createKey($name, $scopes);
            self::$keys[$name] = $created->key;
            self::$ids[$name] = $created->id();
        }
        $revoked = $ada->createKey('revoked', ['invoices:read']);
        self::$store->revoke($revoked->id());
        self::$keys['revoked'] = $revoked->key;
        self::$ids['revoked'] = $revoked->id();
        $orphan = self::$store->create('999', 'no such user', ['invoices:read']);
        self::$keys['orphan'] = $orphan->key;
        self::$ids['orphan'] = $orphan->id();
    }

    public static function tearDownAfterClass(): void
    {
        KeywardGuard::resolveUsersUsing(null);
        self::$laravel = null;
    }

    protected function setUp(): void
    {
        if (self::$laravel === null) {
            if (getenv('KEYWARD_REQUIRE_LARAVEL') === '1') {
                self::fail('Laravel is not installed (/usr/share/php/Illuminate/autoload.php: Debian php-laravel-framework)');
            }
            self::markTestSkipped('Laravel is not installed (scripts/test-php.sh installs php-laravel-framework)');
        }
    }

    /**
     * The $_SERVER entries of each credential style the engine reads (tests/vectors/headers.json).
     *
     * @return array<string, array<string, string>>
     */
    private static function styles(string $key): array
    {
        $parsed = Keyward::parseKey($key);
        $styles = [
            'x-api-key' => ['HTTP_X_API_KEY' => $key],
            'bearer' => ['HTTP_AUTHORIZATION' => "Bearer $key"],
            'basic key:' => ['HTTP_AUTHORIZATION' => 'Basic ' . base64_encode("$key:")],
            'basic :key' => ['HTTP_AUTHORIZATION' => 'Basic ' . base64_encode(":$key")],
            'basic consumed by the server' => ['PHP_AUTH_USER' => $key, 'PHP_AUTH_PW' => ''],
        ];
        if ($parsed->valid) {
            $styles['token pair'] = ['HTTP_X_API_TOKEN_ID' => (string) $parsed->id, 'HTTP_X_API_TOKEN_SECRET_KEY' => (string) $parsed->secret];
        } else { // not a key: the pair of its halves
            $styles['token pair'] = ['HTTP_X_API_TOKEN_ID' => substr($key, 0, 16), 'HTTP_X_API_TOKEN_SECRET_KEY' => substr($key, 16)];
        }
        return $styles;
    }

    /** Uses and refusals of a key, flushed. @return array{0: int, 1: int} */
    private static function usage(string $name): array
    {
        self::$store->flush();
        $usage = self::$store->usage(self::$ids[$name]);
        return [$usage->uses, $usage->refused];
    }

    /** Asserts a refusal identical to what Keyward\Middleware (PSR-15) answers for the code. */
    private function assertRefused(Response $response, int $status, string $code, string $context): void
    {
        self::assertSame($status, $response->getStatusCode(), "$context: " . $response->getContent());
        $body = json_decode((string) $response->getContent(), true, 8, JSON_THROW_ON_ERROR);
        self::assertSame(false, $body['ok'], $context);
        self::assertSame($code, $body['code'], $context);
        $verdict = new Verdict(false, $status, $code, $body['message'], null);
        self::assertSame(\Keyward\Guard::body($verdict), $response->getContent(), $context);
        foreach (\Keyward\Guard::headers($verdict) as $name => $value) {
            self::assertSame($value, $response->headers->get($name), "$context: $name");
        }
        if (class_exists(Psr17Factory::class)) { // the PSR-15 middleware's own answer
            $psr17 = new Psr17Factory();
            $psr = (new Middleware(self::$store, $psr17, $psr17))->deny($verdict);
            self::assertSame((string) $psr->getBody(), $response->getContent(), $context);
            foreach (['Content-Type', 'Cache-Control', 'WWW-Authenticate'] as $name) {
                self::assertSame($psr->getHeaderLine($name), (string) $response->headers->get($name), "$context: $name");
            }
        }
    }

    /** Issue 19: a rate-limited key through the kernel: the IETF fields on 200, then 429. */
    public function testARateLimitedKeyGetsTheFieldsThen429(): void
    {
        $created = self::$store->create('1', 'rate-limited', ['invoices:read'], rateLimit: new \Keyward\RateLimit(1, 60000, 1));
        $server = ['HTTP_X_API_KEY' => $created->key];
        $response = self::$laravel->handle('GET', '/invoices', $server);
        self::assertSame(200, $response->getStatusCode(), (string) $response->getContent());
        self::assertSame('"key";q=1;w=60', $response->headers->get('RateLimit-Policy'));
        self::assertSame('"key";r=0;t=60', $response->headers->get('RateLimit'));
        $response = self::$laravel->handle('GET', '/invoices', $server);
        self::assertSame(429, $response->getStatusCode(), (string) $response->getContent());
        self::assertSame('RATE_LIMITED', json_decode((string) $response->getContent(), true)['code']);
        $retry = (int) $response->headers->get('Retry-After');
        self::assertTrue($retry >= 1 && $retry <= 60, "Retry-After $retry");
    }

    public function testTheDriverIsAnIlluminateGuard(): void
    {
        $guard = self::$laravel->app['auth']->guard('keyward');
        self::assertInstanceOf(GuardContract::class, $guard);
        self::assertInstanceOf(KeywardGuard::class, $guard);
    }

    public function testEveryCredentialStyleThroughTheKernel(): void
    {
        $before = ['read' => self::usage('read'), 'write' => self::usage('write'), 'revoked' => self::usage('revoked')];
        $styles = self::styles(self::$keys['read']);
        self::assertCount(6, $styles);
        foreach ($styles as $style => $server) {
            // valid key with the ability: 200, the user from the Eloquent provider
            $response = self::$laravel->handle('GET', '/invoices', $server);
            self::assertSame(200, $response->getStatusCode(), "$style: " . $response->getContent());
            self::assertSame(['user' => 1, 'key' => self::$ids['read']], json_decode((string) $response->getContent(), true), $style);

            // key lacking the ability: 403 from abilities:
            $this->assertRefused(self::$laravel->handle('GET', '/invoices', self::styles(self::$keys['write'])[$style]),
                403, 'INSUFFICIENT_SCOPE', "$style lacking the ability");

            // revoked: 401 from auth:keyward
            $this->assertRefused(self::$laravel->handle('GET', '/invoices', self::styles(self::$keys['revoked'])[$style]),
                401, 'REVOKED', "$style revoked");

            // unknown key (right shape, wrong secret): 401
            $forged = substr(self::$keys['read'], 0, -12) . strrev(substr(self::$keys['read'], -12));
            $response = self::$laravel->handle('GET', '/invoices', self::styles($forged)[$style]);
            self::assertSame(401, $response->getStatusCode(), "$style forged");
            $this->assertRefused($response, 401, json_decode((string) $response->getContent(), true)['code'], "$style forged");
            self::assertContains(json_decode((string) $response->getContent(), true)['code'], ['NOT_FOUND', 'MALFORMED'], "$style forged");

            // garbage: 401 MALFORMED
            $this->assertRefused(self::$laravel->handle('GET', '/invoices', self::styles('not-a-key-at-all-really')[$style]),
                401, 'MALFORMED', "$style garbage");
        }
        // exactly one use per request, flushed: 6 accepted (read), 6 accepted then refused by
        // abilities: (write: the key itself was valid), 6 refusals (revoked)
        $n = count($styles);
        self::assertSame([$before['read'][0] + $n, $before['read'][1]], self::usage('read'));
        self::assertSame([$before['write'][0] + $n, $before['write'][1]], self::usage('write'));
        self::assertSame([$before['revoked'][0], $before['revoked'][1] + $n], self::usage('revoked'));
    }

    public function testMissingAndUnreadableCredentials(): void
    {
        $cases = [
            'no key' => [[], 'CREDENTIAL_MISSING'],
            'unsupported scheme' => [['HTTP_AUTHORIZATION' => 'Digest abc'], 'UNSUPPORTED_SCHEME'],
            'half a pair' => [['HTTP_X_API_TOKEN_ID' => 'abc'], 'HALF_PAIR'],
            'bad base64' => [['HTTP_AUTHORIZATION' => 'Basic !!!'], 'BAD_BASE64'],
            'two keys' => [['HTTP_X_API_KEY' => self::$keys['read'], 'HTTP_AUTHORIZATION' => 'Bearer ' . self::$keys['write']], 'AMBIGUOUS_CREDENTIAL'],
            // Basic <id>:<secret> is not a style the engine reads (the vectors' Basic forms
            // carry the whole key): the "key" is then "<id>:<secret>", malformed
            'basic id:secret' => [['HTTP_AUTHORIZATION' => 'Basic ' . base64_encode(
                Keyward::parseKey(self::$keys['read'])->id . ':' . Keyward::parseKey(self::$keys['read'])->secret)], 'MALFORMED'],
        ];
        foreach ($cases as $name => [$server, $code]) {
            $this->assertRefused(self::$laravel->handle('GET', '/invoices', $server), 401, $code, $name);
        }
    }

    public function testAnyAbility(): void
    {
        [$adminUses] = self::usage('admin');
        [$readUses] = self::usage('read');
        $response = self::$laravel->handle('POST', '/invoices', ['HTTP_X_API_KEY' => self::$keys['admin']]);
        self::assertSame(200, $response->getStatusCode(), (string) $response->getContent());
        self::assertSame(['can_admin' => true], json_decode((string) $response->getContent(), true));
        $response = self::$laravel->handle('POST', '/invoices', ['HTTP_X_API_KEY' => self::$keys['write']]);
        self::assertSame(['can_admin' => false], json_decode((string) $response->getContent(), true));
        $this->assertRefused(self::$laravel->handle('POST', '/invoices', ['HTTP_X_API_KEY' => self::$keys['read']]),
            403, 'INSUFFICIENT_SCOPE', 'none of the abilities');
        $this->assertRefused(self::$laravel->handle('POST', '/invoices', ['HTTP_X_API_KEY' => self::$keys['none']]),
            403, 'INSUFFICIENT_SCOPE', 'a key without scopes');
        self::assertSame($adminUses + 1, self::usage('admin')[0]);
        self::assertSame($readUses + 1, self::usage('read')[0]);
    }

    public function testUsageAfterManyRequests(): void
    {
        [$uses, $refused] = self::usage('read');
        for ($i = 0; $i < 25; $i++) {
            self::assertSame(200, self::$laravel->handle('GET', '/invoices', ['HTTP_AUTHORIZATION' => 'Bearer ' . self::$keys['read']])->getStatusCode());
        }
        self::assertSame([$uses + 25, $refused], self::usage('read'));
    }

    public function testTheReadmeExampleCreatesAKeyThatWorks(): void
    {
        $response = self::$laravel->handle('POST', '/keys', ['HTTP_X_API_KEY' => self::$keys['admin']]);
        self::assertSame(200, $response->getStatusCode(), (string) $response->getContent());
        $created = json_decode((string) $response->getContent(), true);
        self::assertStringStartsWith('kw_', $created['key']);
        $record = self::$store->get($created['id']);
        self::assertSame('1', $record->owner);
        self::assertSame(['invoices:read'], $record->scopes);
        self::assertSame('deploy bot', $record->name);
        $response = self::$laravel->handle('GET', '/invoices', ['HTTP_X_API_KEY' => $created['key']]);
        self::assertSame(['user' => 1, 'key' => $created['id']], json_decode((string) $response->getContent(), true));
        // the key text is nowhere in the store: only its record
        self::assertNotContains($created['key'], array_map(static fn ($r) => json_encode($r), User::find(1)->apiKeys()));
        self::assertContains($created['id'], array_map(static fn ($r) => $r->id, User::find(1)->apiKeys()));
        // a key without keys:create cannot
        $this->assertRefused(self::$laravel->handle('POST', '/keys', ['HTTP_X_API_KEY' => self::$keys['read']]), 403, 'INSUFFICIENT_SCOPE', '/keys');
    }

    public function testAnOwnerWithoutAUserIs401(): void
    {
        [$uses] = self::usage('orphan');
        $this->assertRefused(self::$laravel->handle('GET', '/invoices', ['HTTP_X_API_KEY' => self::$keys['orphan']]),
            401, Responses::OWNER_NOT_FOUND, 'orphan');
        self::assertSame($uses + 1, self::usage('orphan')[0]); // the key itself was valid: its use counts
    }

    public function testTheUserHookAndTheVerdictOnTheRequest(): void
    {
        $seen = [];
        KeywardGuard::resolveUsersUsing(static function (string $owner, Verdict $verdict) use (&$seen) {
            $seen[] = [$owner, $verdict->keyId()];
            return $owner === '999' ? new KeyOwner('service-999', $verdict) : null;
        });
        try {
            $router = self::$laravel->app['router'];
            $router->get('/whoami', static function (\Illuminate\Http\Request $request) {
                $verdict = $request->attributes->get(Middleware::ATTRIBUTE);
                return ['id' => $request->user()->getAuthIdentifier(), 'verdict' => $verdict->code,
                    'same' => $verdict === $request->user()->currentApiKey() && $verdict === auth()->guard('keyward')->verdict(),
                    'read' => $request->user()->tokenCan('invoices:read'), 'admin' => $request->user()->tokenCan('admin')];
            })->middleware('auth:keyward');
            $router->getRoutes()->refreshNameLookups();
            [$uses] = self::usage('orphan');
            $response = self::$laravel->handle('GET', '/whoami', ['HTTP_X_API_KEY' => self::$keys['orphan']]);
            self::assertSame(['id' => 'service-999', 'verdict' => 'VALID', 'same' => true, 'read' => true, 'admin' => false],
                json_decode((string) $response->getContent(), true));
            self::assertSame([['999', self::$ids['orphan']]], $seen);
            self::assertSame($uses + 1, self::usage('orphan')[0]);
            // the hook refuses ada's keys now
            $this->assertRefused(self::$laravel->handle('GET', '/whoami', ['HTTP_X_API_KEY' => self::$keys['read']]),
                401, Responses::OWNER_NOT_FOUND, 'hook says no');
        } finally {
            KeywardGuard::resolveUsersUsing(null);
        }
    }

    public function testAbilitiesAloneAuthenticateOnce(): void
    {
        self::$laravel->app['router']->get('/alone', static fn () => 'ok')->middleware('keyward.abilities:invoices:read');
        [$uses] = self::usage('read');
        self::assertSame('ok', self::$laravel->handle('GET', '/alone', ['HTTP_X_API_KEY' => self::$keys['read']])->getContent());
        $this->assertRefused(self::$laravel->handle('GET', '/alone', []), 401, 'CREDENTIAL_MISSING', 'alone, no key');
        $this->assertRefused(self::$laravel->handle('GET', '/alone', ['HTTP_X_API_KEY' => self::$keys['write']]), 403, 'INSUFFICIENT_SCOPE', 'alone');
        self::assertSame($uses + 1, self::usage('read')[0]);
    }

    public function testAStackedRouteSpendsOneCreditPerRequest(): void
    {
        // auth:keyward, then abilities: (rechecked against the same verdict, the extra scope
        // read from the key's record): each request is verified once, so a key with 3
        // credits serves exactly 3 requests.
        $limited = self::$store->create('1', 'limited', ['invoices:read', 'admin'], credits: new Credits(3));
        self::$laravel->app['router']->get('/stacked', static fn (\Illuminate\Http\Request $r) => $r->attributes->get(Middleware::ATTRIBUTE)->code)
            ->middleware(['auth:keyward', 'abilities:invoices:read,admin']);
        $statuses = [];
        for ($i = 0; $i < 4; $i++) {
            $response = self::$laravel->handle('GET', '/stacked', ['HTTP_X_API_KEY' => $limited->key]);
            $statuses[] = $response->getStatusCode();
            if ($response->getStatusCode() === 200) {
                self::assertSame('VALID', $response->getContent());
            }
        }
        self::assertSame([200, 200, 200, 403], $statuses);
        self::$store->flush();
        $usage = self::$store->usage($limited->id());
        self::assertSame([3, 1], [$usage->uses, $usage->refused]); // one use per request
        self::assertSame(0, self::$store->credits($limited->id())->remaining);
        // The extra scope a later layer asks for is checked against the same verdict.
        $reader = self::$store->create('1', 'reader', ['invoices:read'], credits: new Credits(3));
        $this->assertRefused(self::$laravel->handle('GET', '/stacked', ['HTTP_X_API_KEY' => $reader->key]), 403, 'INSUFFICIENT_SCOPE', 'reader');
        self::$store->flush();
        self::assertSame(1, self::$store->usage($reader->id())->uses, 'verified once, by auth:keyward');
        self::assertSame(2, self::$store->credits($reader->id())->remaining);
    }

    public function testValidateCountsAndDoesNotLogIn(): void
    {
        $guard = self::$laravel->app['auth']->guard('keyward');
        self::assertTrue($guard->validate(['key' => self::$keys['read']]));
        $parsed = Keyward::parseKey(self::$keys['read']);
        self::assertTrue($guard->validate(['id' => $parsed->id, 'secret' => $parsed->secret]));
        self::assertFalse($guard->validate(['key' => self::$keys['revoked']]));
        self::assertFalse($guard->validate([]));
    }

    public function testTheReadmeShowsTheExamplesThisTestRuns(): void
    {
        $readme = (string) file_get_contents(dirname(__DIR__, 4) . '/README.md');
        foreach (['api.php', 'User.php', 'auth.php'] as $file) {
            $example = rtrim((string) file_get_contents(dirname(__DIR__, 2) . "/examples/laravel/$file"), "\n");
            self::assertStringContainsString("```php\n$example\n```", $readme, "README.md (Laravel) does not show examples/laravel/$file verbatim");
        }
    }
}
