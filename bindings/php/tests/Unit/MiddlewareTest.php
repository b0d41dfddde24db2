<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Credentials;
use Keyward\Middleware;
use Keyward\Store;
use Keyward\Tests\TempStores;
use Keyward\Verdict;
use Nyholm\Psr7\Factory\Psr17Factory;
use Nyholm\Psr7\ServerRequest;
use PHPUnit\Framework\TestCase;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * The PSR-15 middleware against the published PSR-7/15/17 interfaces (nyholm/psr7 as the
 * message implementation), and credential extraction from PSR-7 requests.
 */
final class MiddlewareTest extends TestCase
{
    use TempStores;

    private static Store $store;
    private static string $key;
    private static string $revoked;
    private Psr17Factory $psr17;

    public static function setUpBeforeClass(): void
    {
        self::$store = self::newStore('middleware');
        self::$key = self::$store->create('acct_9', scopes: ['read'])->key;
        $revoked = self::$store->create('acct_9');
        self::$store->revoke($revoked->id());
        self::$revoked = $revoked->key;
    }

    public static function tearDownAfterClass(): void
    {
        self::$store->close();
    }

    protected function setUp(): void
    {
        if (!class_exists(Psr17Factory::class)) {
            self::markTestSkipped('nyholm/psr7 is not installed (scripts/test-php.sh installs php-nyholm-psr7)');
        }
        $this->psr17 = new Psr17Factory();
    }

    /** A handler answering 200 with the verdict's owner; records what it received. */
    private function handler(?ServerRequestInterface &$seen = null): RequestHandlerInterface
    {
        return new class ($this->psr17, $seen) implements RequestHandlerInterface {
            public function __construct(private Psr17Factory $psr17, private ?ServerRequestInterface &$seen)
            {
            }

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $this->seen = $request;
                $verdict = $request->getAttribute(Middleware::ATTRIBUTE);
                return $this->psr17->createResponse(200)->withBody($this->psr17->createStream('hello ' . $verdict->owner()));
            }
        };
    }

    private function request(array $headers): ServerRequestInterface
    {
        return new ServerRequest('GET', '/invoices', $headers);
    }

    /** @return array{ok: bool, code: string, message: string} */
    private static function body(ResponseInterface $response): array
    {
        return json_decode((string) $response->getBody(), true, 8, JSON_THROW_ON_ERROR);
    }

    public function testItIsAPsr15Middleware(): void
    {
        self::assertInstanceOf(MiddlewareInterface::class, new Middleware(self::$store, $this->psr17, $this->psr17));
    }

    public function testAValidKeyPassesWithTheVerdictAttribute(): void
    {
        $middleware = new Middleware(self::$store, $this->psr17, $this->psr17, ['read']);
        $seen = null;
        $response = $middleware->process($this->request(['Authorization' => 'Bearer ' . self::$key]), $this->handler($seen));
        self::assertSame(200, $response->getStatusCode());
        self::assertSame('hello acct_9', (string) $response->getBody());
        $verdict = $seen->getAttribute('keyward.verdict');
        self::assertInstanceOf(Verdict::class, $verdict);
        self::assertTrue($verdict->valid);
        self::assertSame('acct_9', $verdict->owner());
    }

    public function testRefusalsAreJson401And403(): void
    {
        $middleware = new Middleware(self::$store, $this->psr17, $this->psr17, ['read']);
        $cases = [
            'no key' => [[], 401, 'CREDENTIAL_MISSING', 'no API key in the request'],
            'garbage' => [['x-api-key' => 'nope'], 401, 'MALFORMED', 'the API key is malformed'],
            'revoked' => [['x-api-key' => self::$revoked], 401, 'REVOKED', 'the API key has been revoked'],
            'unsupported scheme' => [['Authorization' => 'Digest abc'], 401, 'UNSUPPORTED_SCHEME', null],
            'half a pair' => [['X-Api-Token-Id' => 'abc'], 401, 'HALF_PAIR', null],
            'missing scope' => [['x-api-key' => self::$key], 403, 'INSUFFICIENT_SCOPE', 'the API key lacks a scope this route requires'],
        ];
        foreach ($cases as $name => [$headers, $status, $code, $message]) {
            $mw = $name === 'missing scope' ? $middleware->requiring('admin') : $middleware;
            $called = false;
            $handler = new class ($called) implements RequestHandlerInterface {
                public function __construct(private bool &$called)
                {
                }

                public function handle(ServerRequestInterface $request): ResponseInterface
                {
                    $this->called = true;
                    throw new \LogicException('must not be reached');
                }
            };
            $response = $mw->process($this->request($headers), $handler);
            self::assertFalse($called, $name);
            self::assertSame($status, $response->getStatusCode(), $name);
            self::assertSame('application/json', $response->getHeaderLine('Content-Type'), $name);
            self::assertSame('no-store', $response->getHeaderLine('Cache-Control'), $name);
            $body = self::body($response);
            self::assertSame(['ok', 'code', 'message'], array_keys($body), $name);
            self::assertFalse($body['ok'], $name);
            self::assertSame($code, $body['code'], $name);
            if ($message !== null) {
                self::assertSame($message, $body['message'], $name);
            }
            self::assertSame($status === 401 ? 'Bearer' : 'Bearer error="insufficient_scope"', $response->getHeaderLine('WWW-Authenticate'), $name);
        }
    }

    public function testStoreClosureScopesForAndAttributeName(): void
    {
        $opened = 0;
        $middleware = new Middleware(function () use (&$opened): Store {
            $opened++;
            return self::$store;
        }, $this->psr17, $this->psr17, attribute: 'apiKey', scopesFor: fn (ServerRequestInterface $r): array =>
            $r->getMethod() === 'DELETE' ? ['admin'] : ['read']);
        $seen = null;
        $ok = $middleware->process($this->request(['x-api-key' => self::$key]), $this->handler2($seen));
        self::assertSame(200, $ok->getStatusCode());
        self::assertSame('acct_9', $seen->getAttribute('apiKey')->owner());
        $denied = $middleware->process(new ServerRequest('DELETE', '/invoices/1', ['x-api-key' => self::$key]), $this->handler2($seen));
        self::assertSame(403, $denied->getStatusCode());
        self::assertSame(2, $opened, 'the closure is called per request');
    }

    private function handler2(?ServerRequestInterface &$seen): RequestHandlerInterface
    {
        return new class ($this->psr17, $seen) implements RequestHandlerInterface {
            public function __construct(private Psr17Factory $psr17, private ?ServerRequestInterface &$seen)
            {
            }

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $this->seen = $request;
                return $this->psr17->createResponse(200);
            }
        };
    }

    public function testCredentialsFromAPsr7Request(): void
    {
        $request = $this->request([
            'Accept' => '*/*',
            'X-API-KEY' => ['one', 'two'],
            'Authorization' => 'Bearer x',
            'X-Api-Token-Id' => 'id',
            'X-Api-Token-Secret-Key' => 'secret',
            'Cookie' => 'a=b',
        ]);
        self::assertSame([
            ['x-api-key', 'one'], ['x-api-key', 'two'], ['authorization', 'Bearer x'],
            ['x-api-token-id', 'id'], ['x-api-token-secret-key', 'secret'],
        ], Credentials::fromRequest($request));
        self::assertSame([], Credentials::fromRequest($this->request(['Accept' => '*/*'])));
        self::assertTrue(self::$store->verifyRequest($this->request(['X-Api-Key' => self::$key]), ['read'])->valid);
    }

    public function testCredentialsFromServer(): void
    {
        self::assertSame([['x-api-key', 'k'], ['authorization', 'Bearer t']],
            Credentials::fromServer(['HTTP_X_API_KEY' => 'k', 'HTTP_AUTHORIZATION' => 'Bearer t', 'PHP_AUTH_USER' => 'u', 'HTTP_ACCEPT' => '*/*']));
        self::assertSame([['authorization', 'Basic ' . base64_encode('u:p')]],
            Credentials::fromServer(['PHP_AUTH_USER' => 'u', 'PHP_AUTH_PW' => 'p']));
        self::assertSame([['authorization', 'Bearer r']], Credentials::fromServer(['REDIRECT_HTTP_AUTHORIZATION' => 'Bearer r']));
        self::assertSame([], Credentials::fromServer(['HTTP_X_API_KEY' => ['not', 'a string']]));
    }
}
