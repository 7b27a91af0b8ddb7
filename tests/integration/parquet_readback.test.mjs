// Parquet files written by sluice's writer, read back by two independent readers.
//
//   node tests/integration/parquet_readback.test.mjs <path/to/sluice> <source root>
//
// Runs <build>/bench/sluice_parquet_tool (next to the sluice binary's build dir), which writes a
// deterministic file with every column type (strings of low and high cardinality, timestamps,
// int64 beyond 2^53, doubles, booleans, nulls in every optional column) and the same rows as
// NDJSON. For zstd, snappy and none, with several row groups and several pages per chunk, checks
// with DuckDB (@duckdb/node-api) and hyparquet (+ hyparquet-compressors): every row and value,
// counts, sums, null counts, timestamps as UTC instants, footer statistics per row group
// (parquet_metadata), codecs, and that string columns are dictionary-encoded. A last file with a
// tiny dictionary limit checks the fallback from dictionary to PLAIN inside a column chunk.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readNdjson, requireNode, step, testArgs } from './lib/harness.mjs';

const { binary: sluiceBinary } = testArgs(import.meta.url);
const tool = path.join(path.dirname(sluiceBinary), 'bench', 'sluice_parquet_tool');

const rows = 5000;
const rowGroupRows = 2000; // → 3 row groups (2000, 2000, 1000)
const dataPageBytes = 16384; // → several data pages per column chunk
const columns = ['id', 'type', 'device_id', 'ts', 'offset', 'position_ms', 'score', 'ok', 'note'];
const int64Columns = new Set(['offset', 'position_ms']);
const stringColumns = ['id', 'type', 'device_id', 'note'];
const codecName = { zstd: 'ZSTD', snappy: 'SNAPPY', none: 'UNCOMPRESSED' };

const { DuckDBInstance } = requireNode('@duckdb/node-api');
const { parquetReadObjects, asyncBufferFromFile } = await import(requireNode.resolve('hyparquet'));
const { compressors } = await import(requireNode.resolve('hyparquet-compressors'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-parquet-readback-'));
const db = await DuckDBInstance.create(':memory:');
const duck = await db.connect();
const sql = async (q) => (await duck.runAndReadAll(q)).getRowObjectsJson();

/// Runs the tool; returns the expected rows it wrote.
function writeFile(name, codec, extra = []) {
  const file = path.join(dir, `${name}.parquet`);
  const out = execFileSync(tool, [file, '--rows', String(rows), '--codec', codec,
    '--row-group-rows', String(rowGroupRows), '--data-page-bytes', String(dataPageBytes),
    ...extra], { encoding: 'utf8' });
  const summary = JSON.parse(out.trim());
  assert.equal(summary.rows, rows);
  assert.equal(summary.bytes, fs.statSync(file).size, 'the tool reports the file size');
  const expected = readNdjson(path.join(dir, `${name}.expected.ndjson`));
  assert.equal(expected.length, rows);
  return { file, expected };
}

/// Min/max/nulls of one column over rows [from, to) of the expected data, in the writer's terms.
function expectedStats(expected, column, from, to) {
  let min = null, max = null, nulls = 0;
  for (let i = from; i < to; ++i) {
    let v = expected[i][column];
    if (v === null) { ++nulls; continue; }
    if (int64Columns.has(column)) v = BigInt(v);
    // UTF-16 order equals UTF-8 byte order for the (BMP, non-surrogate) strings the tool writes.
    if (min === null || v < min) min = v;
    if (max === null || v > max) max = v;
  }
  return { min, max, nulls };
}

async function checkDuckdb({ file, expected }, codec) {
  const got = await sql(`SELECT id, type, device_id, epoch_ms(ts)::BIGINT AS ts_ms,
      typeof(ts) AS ts_type, "offset", position_ms, score, ok, note
    FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`);
  assert.equal(got.length, rows, 'DuckDB row count');
  for (let i = 0; i < rows; ++i) {
    const e = expected[i], g = got[i];
    const where = `DuckDB row ${i} (${codec})`;
    assert.equal(g.ts_type, 'TIMESTAMP WITH TIME ZONE', `${where}: ts is a UTC instant`);
    assert.equal(g.ts_ms, String(e.ts), `${where}: ts`);
    for (const c of ['id', 'type', 'device_id', 'note', 'score', 'ok'])
      assert.equal(g[c], e[c], `${where}: ${c}`);
    assert.equal(g.offset, e.offset, `${where}: offset`);
    assert.equal(g.position_ms, String(e.position_ms), `${where}: position_ms`);
  }
  // Aggregates computed by DuckDB against the same computed from the expected rows.
  const [agg] = await sql(`SELECT count(*) AS n, sum("offset")::VARCHAR AS offset_sum,
      sum(position_ms)::VARCHAR AS position_sum, sum(score) AS score_sum,
      ${columns.map((c) => `count("${c}") AS "nn_${c}"`).join(', ')}
    FROM read_parquet('${file}')`);
  assert.equal(agg.n, String(rows));
  let offsetSum = 0n, positionSum = 0n, scoreSum = 0;
  for (const e of expected) {
    if (e.offset !== null) offsetSum += BigInt(e.offset);
    positionSum += BigInt(e.position_ms);
    if (e.score !== null) scoreSum += e.score;
  }
  assert.equal(agg.offset_sum, String(offsetSum), 'sum(offset)');
  assert.equal(agg.position_sum, String(positionSum), 'sum(position_ms)');
  assert.equal(agg.score_sum, scoreSum, 'sum(score)');
  for (const c of columns) {
    const nonNull = expected.filter((e) => e[c] !== null).length;
    assert.equal(agg[`nn_${c}`], String(nonNull), `count(${c})`);
  }
}

async function checkMetadata({ file, expected }, codec) {
  const meta = await sql(`SELECT row_group_id, row_group_num_rows, path_in_schema, num_values,
      stats_null_count, stats_min_value, stats_max_value, compression, encodings,
      dictionary_page_offset, data_page_offset
    FROM parquet_metadata('${file}') ORDER BY row_group_id, column_id`);
  const groups = Math.ceil(rows / rowGroupRows);
  assert.equal(meta.length, groups * columns.length, 'one chunk per column per row group');
  for (const m of meta) {
    const g = Number(m.row_group_id);
    const from = g * rowGroupRows, to = Math.min(rows, from + rowGroupRows);
    const where = `row group ${g} column ${m.path_in_schema} (${codec})`;
    assert.equal(m.row_group_num_rows, String(to - from), `${where}: rows`);
    assert.equal(m.num_values, String(to - from), `${where}: num_values`);
    assert.equal(m.compression, codecName[codec], `${where}: codec`);
    const s = expectedStats(expected, m.path_in_schema, from, to);
    assert.equal(m.stats_null_count, String(s.nulls), `${where}: null count`);
    assert.notEqual(m.stats_min_value, null, `${where}: min present`);
    assert.notEqual(m.stats_max_value, null, `${where}: max present`);
    if (m.path_in_schema === 'ts') {
      assert.equal(new Date(m.stats_min_value.replace(' ', 'T').replace(/\+00$/, 'Z')).getTime(),
                   Number(s.min), `${where}: min`);
    } else if (m.path_in_schema === 'score') {
      assert.equal(Number(m.stats_min_value), s.min, `${where}: min`);
      assert.equal(Number(m.stats_max_value), s.max, `${where}: max`);
    } else {
      assert.equal(m.stats_min_value, String(s.min), `${where}: min`);
      assert.equal(m.stats_max_value, String(s.max), `${where}: max`);
    }
    if (stringColumns.includes(m.path_in_schema)) {
      assert.match(m.encodings, /RLE_DICTIONARY/, `${where}: dictionary-encoded`);
      assert.notEqual(m.dictionary_page_offset, null, `${where}: has a dictionary page`);
    } else {
      assert.equal(m.dictionary_page_offset, null, `${where}: no dictionary page`);
    }
  }
  return meta;
}

async function checkHyparquet({ file, expected }, codec) {
  const got = await parquetReadObjects({ file: await asyncBufferFromFile(file), compressors });
  assert.equal(got.length, rows, 'hyparquet row count');
  for (let i = 0; i < rows; ++i) {
    const e = expected[i], g = got[i];
    const where = `hyparquet row ${i} (${codec})`;
    assert.ok(g.ts instanceof Date, `${where}: ts is a timestamp`);
    assert.equal(g.ts.getTime(), e.ts, `${where}: ts`);
    for (const c of ['id', 'type', 'device_id', 'note', 'score', 'ok'])
      assert.equal(g[c], e[c], `${where}: ${c}`);
    assert.equal(g.offset, e.offset === null ? null : BigInt(e.offset), `${where}: offset`);
    assert.equal(g.position_ms, BigInt(e.position_ms), `${where}: position_ms`);
  }
}

const t0 = Date.now();
try {
  if (!fs.existsSync(tool))
    throw new Error(`${tool} not found: build the default target (it builds sluice_parquet_tool)`);
  const dictionaryPageSizes = {};
  for (const codec of ['zstd', 'snappy', 'none']) {
    let data;
    await step(`${codec}: the tool writes ${rows} rows in ${Math.ceil(rows / rowGroupRows)} row groups`,
      async () => { data = writeFile(`events_${codec}`, codec); });
    await step(`${codec}: DuckDB reads every value, count, sum and UTC timestamp`,
      () => checkDuckdb(data, codec));
    await step(`${codec}: DuckDB sees per-row-group stats, codec and dictionary encoding`, async () => {
      const meta = await checkMetadata(data, codec);
      if (codec === 'none') {
        const note = meta.find((m) => m.path_in_schema === 'note' && m.row_group_id === '0');
        dictionaryPageSizes.full = Number(note.data_page_offset) - Number(note.dictionary_page_offset);
      }
    });
    await step(`${codec}: hyparquet reads every value`, () => checkHyparquet(data, codec));
  }

  const maxDictionaryBytes = 2048;
  let fallback;
  await step('a dictionary over max-dictionary-bytes falls back to PLAIN within the chunk', async () => {
    fallback = writeFile('fallback', 'none', ['--max-dictionary-bytes', String(maxDictionaryBytes)]);
    const meta = await sql(`SELECT encodings, dictionary_page_offset, data_page_offset
      FROM parquet_metadata('${fallback.file}') WHERE path_in_schema = 'note' AND row_group_id = 0`);
    assert.match(meta[0].encodings, /RLE_DICTIONARY/);
    assert.match(meta[0].encodings, /PLAIN/);
    const dictionaryPage = Number(meta[0].data_page_offset) - Number(meta[0].dictionary_page_offset);
    // The dictionary stops growing one entry past the limit (plus the page header).
    assert.ok(dictionaryPage < maxDictionaryBytes + 256,
              `the dictionary page (${dictionaryPage} bytes) stays near the limit`);
    assert.ok(dictionaryPageSizes.full > 4 * maxDictionaryBytes,
              `without the limit the dictionary is larger (${dictionaryPageSizes.full} bytes)`);
  });
  await step('the fallback file reads back fully in DuckDB and hyparquet', async () => {
    await checkDuckdb(fallback, 'fallback');
    await checkHyparquet(fallback, 'fallback');
  });

  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`PASS: parquet read-back (${Date.now() - t0} ms)`);
  process.exit(0);
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  console.error(`files kept for inspection: ${dir}`);
  process.exit(1);
}
