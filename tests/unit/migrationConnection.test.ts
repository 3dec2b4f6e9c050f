/**
 * `prisma migrate deploy` (the Helm hook, compose's migrate service, CI) connects with the fields
 * prisma.config.ts takes from DATABASE_URL. They must carry what the running service's pg reads from
 * the same string: a managed PostgreSQL that requires TLS refused migrations that dropped sslmode.
 */
import { connectionFields } from '../../prisma.config';

test('migrations connect with everything the connection string says: TLS, options, application_name, an encoded user, password and database', () => {
  const fields = connectionFields('postgresql://mig%40r:p%40ss@db.example:6543/flow%2Dx?sslmode=verify-full&application_name=flow-migrate&options=-c%20search_path%3Dflow');
  expect(fields).toMatchObject({
    host: 'db.example',
    port: 6543,
    user: 'mig@r',
    password: 'p@ss',
    database: 'flow-x',
    application_name: 'flow-migrate',
    options: '-c search_path=flow',
  });
  // sslmode=verify-full: TLS, with the server's certificate verified (pg's default for an ssl object).
  expect(fields.ssl).toBeTruthy();
  expect(fields.ssl).not.toMatchObject({ rejectUnauthorized: false });
  expect(connectionFields('postgresql://db.example/flow').ssl).toBeUndefined();
});

test('what the string leaves out falls back as before: user postgres, database postgres, no password (pg then reads PGPASSWORD)', () => {
  expect(connectionFields('postgresql://localhost/')).toMatchObject({ host: 'localhost', user: 'postgres', database: 'postgres', password: undefined });
});

test('no DATABASE_URL is one line saying to export it', () => {
  expect(() => connectionFields('')).toThrow('DATABASE_URL is not set (Prisma does not read .env when prisma.config.ts exists); export it first');
});
