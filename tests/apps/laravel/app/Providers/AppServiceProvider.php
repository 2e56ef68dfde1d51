<?php

namespace App\Providers;

use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\ServiceProvider;

/** Creates the SQLite file and its table when they are missing. */
class AppServiceProvider extends ServiceProvider
{
    public function boot()
    {
        $file = $this->app['config']['database.connections.sqlite.database'];
        if (!is_file($file)) {
            touch($file);
        }
        $schema = $this->app['db']->connection()->getSchemaBuilder();
        if (!$schema->hasTable('notes')) {
            $schema->create('notes', function (Blueprint $table) {
                $table->id();
                $table->text('body');
                $table->timestamps();
            });
        }
    }
}
