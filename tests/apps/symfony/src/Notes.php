<?php

namespace App;

use Doctrine\DBAL\Connection;
use Doctrine\DBAL\DriverManager;

/** Notes in an SQLite file, through Doctrine DBAL. */
final class Notes
{
    private string $path;
    private ?Connection $connection = null;

    public function __construct(string $path)
    {
        $this->path = $path;
    }

    public function add(string $body): int
    {
        $db = $this->db();
        $db->insert('note', ['body' => $body, 'created_at' => gmdate('Y-m-d H:i:s')]);
        return (int) $db->lastInsertId();
    }

    /** @return list<array{id: int|string, body: string, created_at: string}> */
    public function all(): array
    {
        return $this->db()->createQueryBuilder()
            ->select('id', 'body', 'created_at')
            ->from('note')
            ->orderBy('id')
            ->executeQuery()
            ->fetchAllAssociative();
    }

    /** The connection, opened on first use (and kept by a worker). */
    private function db(): Connection
    {
        if ($this->connection === null) {
            $this->connection = DriverManager::getConnection(['driver' => 'pdo_sqlite', 'path' => $this->path]);
            $this->connection->executeStatement(
                'CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY AUTOINCREMENT, '
                . 'body TEXT NOT NULL, created_at TEXT NOT NULL)'
            );
        }
        return $this->connection;
    }
}
