<?php

// The same endpoint as a PSR-15 stack: Keyward\Middleware in front of a handler, PSR-7
// messages from nyholm/psr7.   ?scopes=a,b

declare(strict_types=1);

require __DIR__ . '/../../autoload.php';

use Keyward\Middleware;
use Keyward\Store;
use Nyholm\Psr7\Factory\Psr17Factory;
use Nyholm\Psr7\ServerRequest;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\RequestHandlerInterface;

$headers = [];
foreach ($_SERVER as $name => $value) {
    if (is_string($value) && str_starts_with($name, 'HTTP_')) {
        $headers[str_replace('_', '-', strtolower(substr($name, 5)))] = $value;
    }
}
$request = new ServerRequest($_SERVER['REQUEST_METHOD'] ?? 'GET', $_SERVER['REQUEST_URI'] ?? '/', $headers, null, '1.1', $_SERVER);
$psr17 = new Psr17Factory();
$scopes = array_values(array_filter(explode(',', (string) ($_GET['scopes'] ?? ''))));
$middleware = new Middleware(fn (): Store => Store::persistent((string) getenv('KEYWARD_STORE')), $psr17, $psr17, $scopes);
$handler = new class ($psr17) implements RequestHandlerInterface {
    public function __construct(private Psr17Factory $psr17)
    {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        $verdict = $request->getAttribute(Middleware::ATTRIBUTE);
        return $this->psr17->createResponse(200)->withHeader('Content-Type', 'application/json')
            ->withBody($this->psr17->createStream(json_encode(['ok' => true, 'owner' => $verdict->owner(), 'pid' => getmypid()]) . "\n"));
    }
};
$response = $middleware->process($request, $handler);
header('X-Worker-Pid: ' . getmypid());
foreach ($response->getHeaders() as $name => $values) {
    header("$name: " . implode(', ', $values));
}
http_response_code($response->getStatusCode()); // last: PHP makes a WWW-Authenticate header a 401
echo $response->getBody();
