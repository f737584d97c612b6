/**
 * The records both sides read, on real files: what each state of the replication record means
 * (an unreadable record counts as applied, so nothing is ever applied twice), and how records
 * are written (indented JSON, whole or not at all).
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CLONE_RECORD,
  REPLICATION_RECORD,
  readCloneRecord,
  readJsonRecord,
  readReplicationState,
  writeCloneRecord,
  writeRecord,
} from '../../../agent/core/records.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'records-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readReplicationState', () => {
  it('is none without a record', async () => {
    expect(await readReplicationState(dir)).toBe('none');
  });

  it.each([
    ['applying', { state: 'applying' }, 'applying'],
    ['applied', { state: 'applied', how: 'applied' }, 'applied'],
    ['an earlier agent\'s record, without state', { how: 'applied' }, 'applied'],
    ['a state it does not know', { state: 'later' }, 'applied'],
  ])('reads %s', async (_what, record, state) => {
    await writeFile(join(dir, REPLICATION_RECORD), JSON.stringify(record));
    expect(await readReplicationState(dir)).toBe(state);
  });

  it.each([
    ['half a JSON object', '{"state": "appl'],
    ['an empty file', ''],
    ['JSON that is not an object', 'null'],
  ])('counts %s as applied: never applied twice', async (_what, text) => {
    await writeFile(join(dir, REPLICATION_RECORD), text);
    expect(await readReplicationState(dir)).toBe('applied');
  });

  it('fails, rather than saying none, when the record exists but cannot be read', async () => {
    await mkdir(join(dir, REPLICATION_RECORD));
    await expect(readReplicationState(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });
});

describe('writeRecord and readJsonRecord', () => {
  it('writes indented JSON ending in a newline, replacing the old record whole and leaving no temporary file', async () => {
    await writeRecord(dir, REPLICATION_RECORD, { state: 'applying', statements: ['A'] });
    await writeRecord(dir, REPLICATION_RECORD, { state: 'applied', how: 'applied' });
    expect(await readFile(join(dir, REPLICATION_RECORD), 'utf8')).toBe('{\n  "state": "applied",\n  "how": "applied"\n}\n');
    expect(await readdir(dir)).toEqual([REPLICATION_RECORD]);
  });

  it('reads back what it wrote; null when absent or not JSON', async () => {
    const record = { source: { host: 'mysql-0.mysql', ordinal: 0 }, bytes: 42 };
    await writeCloneRecord(dir, record as never);
    expect(await readCloneRecord(dir)).toEqual(record);
    expect(JSON.parse(await readFile(join(dir, CLONE_RECORD), 'utf8'))).toEqual(record);
    expect(await readJsonRecord(dir, 'missing.json')).toBeNull();
    await writeFile(join(dir, 'torn.json'), '{"a":');
    expect(await readJsonRecord(dir, 'torn.json')).toBeNull();
  });
});
