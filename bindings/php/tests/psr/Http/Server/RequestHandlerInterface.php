<?php

// PSR-15 (https://www.php-fig.org/psr/psr-15/), psr/http-server-handler 1.0.2, MIT
// licence, copyright (c) 2016 PHP Framework Interoperability Group. Vendored for the tests
// only, loaded when the package is not installed (Debian has no php-psr-http-server-* package).

namespace Psr\Http\Server;

use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

/**
 * Handles a server request and produces a response.
 *
 * An HTTP request handler process an HTTP request in order to produce an
 * HTTP response.
 */
interface RequestHandlerInterface
{
    /**
     * Handles a request and produces a response.
     *
     * May call other collaborating code to generate the response.
     */
    public function handle(ServerRequestInterface $request): ResponseInterface;
}
