<?php

// Keyward\Middleware twice in a PSR-15 pipeline, then Keyward\Guard::require() in the handler:
// the request is verified once (one use, one credit), by the first middleware.
//   ?inner=a,b    scopes of the second middleware    ?guard=a,b    scopes of the Guard

declare(strict_types=1);

require __DIR__ . '/../../autoload.php';

use Keyward\Guard;
use Keyward\Middleware;
use Keyward\Store;
use Nyholm\Psr7\Factory\Psr17Factory;
use Nyholm\Psr7\ServerRequest;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

$headers = [];
foreach ($_SERVER as $name => $value) {
    if (is_string($value) && str_starts_with($name, 'HTTP_')) {
        $headers[str_replace('_', '-', strtolower(substr($name, 5)))] = $value;
    }
}
$request = new ServerRequest($_SERVER['REQUEST_METHOD'] ?? 'GET', $_SERVER['REQUEST_URI'] ?? '/', $headers, null, '1.1', $_SERVER);
$psr17 = new Psr17Factory();
$list = static fn (string $name): array => array_values(array_filter(explode(',', (string) ($_GET[$name] ?? ''))));
$outer = new Middleware(fn (): Store => Store::persistent((string) getenv('KEYWARD_STORE')), $psr17, $psr17);
$inner = $outer->requiring(...$list('inner'));
$handler = new class ($psr17, $list('guard')) implements RequestHandlerInterface {
    public function __construct(private Psr17Factory $psr17, private array $scopes)
    {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        $verdict = Guard::require($this->scopes); // answers 401/403 and exits when refused
        $same = $verdict === $request->getAttribute(Middleware::ATTRIBUTE);
        return $this->psr17->createResponse(200)->withHeader('Content-Type', 'application/json')->withBody($this->psr17->createStream(
            json_encode(['ok' => true, 'owner' => $verdict->owner(), 'same_verdict' => $same, 'pid' => getmypid()]) . "\n"));
    }
};
$pipeline = new class ($inner, $handler) implements RequestHandlerInterface {
    public function __construct(private MiddlewareInterface $middleware, private RequestHandlerInterface $next)
    {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        return $this->middleware->process($request, $this->next);
    }
};
header('X-Worker-Pid: ' . getmypid());
$response = $outer->process($request, $pipeline);
foreach ($response->getHeaders() as $name => $values) {
    header("$name: " . implode(', ', $values));
}
http_response_code($response->getStatusCode()); // last: PHP makes a WWW-Authenticate header a 401
echo $response->getBody();
