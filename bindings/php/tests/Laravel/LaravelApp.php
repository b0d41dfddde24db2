<?php

declare(strict_types=1);

namespace Keyward\Tests\Laravel;

use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Http\Kernel as KernelContract;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Foundation\Application;
use Illuminate\Foundation\Exceptions\Handler;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Facade;
use Symfony\Component\HttpFoundation\Response;

/**
 * A real Laravel 8 application (Debian's php-laravel-framework, no Composer) in a temporary
 * directory: config files, the users table in SQLite memory, the README's config/auth.php,
 * routes/api.php and User model (bindings/php/examples/laravel/), and the HTTP kernel.
 */
final class LaravelApp
{
    public static function available(): bool
    {
        return is_file('/usr/share/php/Illuminate/autoload.php');
    }

    public static function autoload(): void
    {
        require_once '/usr/share/php/Illuminate/autoload.php';
        require_once dirname(__DIR__, 2) . '/examples/laravel/User.php';
    }

    public readonly Application $app;
    public readonly KernelContract $kernel;

    /** @param array<string, mixed> $keyward config/keyward.php */
    public function __construct(string $base, array $keyward)
    {
        foreach (['config', 'bootstrap/cache', 'storage/logs', 'storage/framework'] as $dir) {
            @mkdir("$base/$dir", 0700, true);
        }
        $example = dirname(__DIR__, 2) . '/examples/laravel';
        copy("$example/auth.php", "$base/config/auth.php");
        $configs = [
            'app' => ['name' => 'keyward-test', 'env' => 'testing', 'debug' => true, 'timezone' => 'UTC', 'providers' => [
                \Illuminate\Auth\AuthServiceProvider::class,
                \Illuminate\Database\DatabaseServiceProvider::class,
                \Illuminate\Hashing\HashServiceProvider::class,
                \Keyward\Laravel\KeywardServiceProvider::class,
            ]],
            'database' => ['default' => 'sqlite', 'connections' => ['sqlite' => ['driver' => 'sqlite', 'database' => ':memory:', 'prefix' => '']]],
            'keyward' => $keyward,
        ];
        foreach ($configs as $name => $config) {
            file_put_contents("$base/config/$name.php", '<?php return ' . var_export($config, true) . ";\n");
        }
        Facade::clearResolvedInstances();
        $app = new Application($base);
        $app->singleton(KernelContract::class, TestKernel::class);
        $app->singleton(ExceptionHandler::class, Handler::class);
        $this->app = $app;
        $this->kernel = $app->make(KernelContract::class);
        $this->kernel->bootstrap();

        $schema = $app['db']->connection()->getSchemaBuilder();
        $schema->create('users', static function (Blueprint $table): void {
            $table->increments('id');
            $table->string('name');
            $table->string('email')->unique();
            $table->string('password');
            $table->rememberToken();
            $table->timestamps();
        });
        require "$example/api.php";
    }

    /** One request through the kernel (as public/index.php does), with these $_SERVER entries. */
    public function handle(string $method, string $uri, array $server = []): Response
    {
        $request = Request::create($uri, $method, [], [], [], $server + ['HTTP_ACCEPT' => 'application/json']);
        $response = $this->kernel->handle($request);
        $this->kernel->terminate($request, $response);
        return $response;
    }
}
