/**
 * Prisma CLI configuration: the adapter-based ("js") schema engine, so `prisma migrate` and
 * `prisma generate` run offline with the WASM engine bundled in the npm package (Prisma's
 * native engines are downloaded at run time and that fails on these machines).
 *
 * The three workarounds below concern the CLI's schema engine only; the running service
 * uses a plain PrismaPg adapter (adapters/db/prismaClient.ts).
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { parse as parsePostgresArray } from 'postgres-array';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { defineConfig } from 'prisma/config';

// 1. adapter-pg rejects PostgreSQL's internal catalog types that the schema engine reads
//    (prisma/orm#27403: "Column type 'name' could not be deserialized"). Report them as text.
const TEXT_OID = 25;
const TEXT_ARRAY_OID = 1009;
const CATALOG_SCALAR_OIDS = new Set([18, 19, 22, 24, 27, 28, 29, 30, 194, 1033, 2205, 2206, 3220, 4089, 4096]);
const CATALOG_ARRAY_OIDS = new Set([1002, 1003, 1006, 1008, 1010, 1011, 1012, 1013, 1034, 2210, 2211, 4090, 4097]);

type QueryResultLike = { fields?: { dataTypeID: number }[]; rows?: unknown[] };

function reportCatalogTypesAsText(result: QueryResultLike): QueryResultLike {
  result.fields?.forEach((field, column) => {
    if (CATALOG_SCALAR_OIDS.has(field.dataTypeID)) field.dataTypeID = TEXT_OID;
    else if (CATALOG_ARRAY_OIDS.has(field.dataTypeID)) {
      field.dataTypeID = TEXT_ARRAY_OID;
      for (const row of result.rows ?? []) {
        const cells = row as unknown[];
        if (Array.isArray(cells) && typeof cells[column] === 'string') cells[column] = parsePostgresArray(cells[column] as string);
      }
    }
  });
  return result;
}

class CatalogTolerantClient extends pg.Client {
  // pg.Pool calls query with a callback; the adapter's transactions use the promise form.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query(...args: any[]): any {
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last];
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      args[last] = (error: unknown, result: any) => callback(error, result && reportCatalogTypesAsText(result));
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const pending = (super.query as any)(...args);
    return pending && typeof pending.then === 'function' ? pending.then(reportCatalogTypesAsText) : pending;
  }
}

// 2. Separate connection fields, not a connection string: the adapter derives the shadow
//    database by overriding `database`, which a connection string would silently win over. The
//    fields are what pg itself reads from the string (TLS from sslmode/sslrootcert, `options`,
//    application_name...), so migrations connect as the running service does.
export function connectionFields(raw = process.env.DATABASE_URL): pg.PoolConfig {
  if (!raw) throw new Error('DATABASE_URL is not set (Prisma does not read .env when prisma.config.ts exists); export it first');
  const fields = parseIntoClientConfig(raw);
  return {
    ...fields,
    user: fields.user || 'postgres',
    // None in the string: pg's own fallbacks (PGPASSWORD, ~/.pgpass), not an empty one.
    password: fields.password || undefined,
    database: fields.database || 'postgres',
    Client: CatalogTolerantClient,
  } as pg.PoolConfig;
}

// 3. Drop the shadow database WITH (FORCE), and give every pool an error listener, or shadow
//    databases are left behind and a dropped connection crashes the CLI.
class MigrationAdapterFactory extends PrismaPg {
  async connectToShadowDb() {
    const main = await this.connect();
    const database = `prisma_migrate_shadow_db_${globalThis.crypto.randomUUID().replace(/-/g, '')}`;
    await main.executeScript(`CREATE DATABASE "${database}"`);
    const shadow = await new PrismaPg({ ...connectionFields(), database }, { onPoolError: () => undefined }).connect();
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await main.executeScript(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await main.dispose();
    };
    return shadow;
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  async adapter() {
    return new MigrationAdapterFactory(connectionFields(), { onPoolError: () => undefined });
  },
});
