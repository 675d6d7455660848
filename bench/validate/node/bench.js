#!/usr/bin/env node
// Backstage side of bench/validate: times stock entity validation with @backstage/catalog-model,
// making the same calls a stock catalog-backend makes for every entity it ingests.
//
//   node bench.js <corpus.jsonl> <corpus.yaml>
//
// Prints one JSON line:
//   {"parsedPerSec": median, "yamlPerSec": median, "valid": n, "verdicts": "0101..."}
// where verdicts has one character per entity in corpus order (1 valid, 0 invalid), taken from
// the timed runs over already-parsed entities.
'use strict';

const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const model = require('@backstage/catalog-model');
const yaml = require('yaml');

/** Timed runs of each measurement (after one warm-up run). */
const RUNS = 5;

// Everything that validates is built once, outside the timed loops, as catalog-backend does.
const envelope = model.entityEnvelopeSchemaValidator();
const entitySchema = model.entitySchemaValidator();
const policy = model.EntityPolicies.allOf([
  new model.SchemaValidEntityPolicy(),
  new model.DefaultNamespaceEntityPolicy(),
  new model.NoForeignRootFieldsEntityPolicy(),
  new model.FieldFormatEntityPolicy(),
]);
const kindValidators = [
  model.apiEntityV1alpha1Validator,
  model.componentEntityV1alpha1Validator,
  model.resourceEntityV1alpha1Validator,
  model.groupEntityV1alpha1Validator,
  model.locationEntityV1alpha1Validator,
  model.userEntityV1alpha1Validator,
  model.systemEntityV1alpha1Validator,
  model.domainEntityV1alpha1Validator,
];

/**
 * Whether an entity passes stock validation: the envelope, the default policies, the entity
 * schema, then one of the built-in kinds must accept it (a kind whose schema rejects it throws).
 */
async function isValid(entity) {
  try {
    envelope(entity);
    const enforced = await policy.enforce(entity);
    entitySchema(enforced);
    let recognized = false;
    for (const validator of kindValidators) {
      if (await validator.check(enforced)) {
        recognized = true;
      }
    }
    return recognized;
  } catch {
    return false;
  }
}

/** Validates already-parsed entities; returns one verdict per entity. */
async function validateParsed(entities) {
  const verdicts = new Array(entities.length);
  for (let i = 0; i < entities.length; i++) {
    verdicts[i] = await isValid(entities[i]);
  }
  return verdicts;
}

/**
 * Reads every document of a multi-document YAML text the way catalog-backend's default parser
 * does (`parseAllDocuments`, merge keys off, `toJSON()`), and validates each entity. Returns the
 * number of documents and how many were valid entities.
 */
async function parseAndValidate(text) {
  let documents = 0;
  let valid = 0;
  for (const document of yaml.parseAllDocuments(text, { merge: false })) {
    documents++;
    if (document.errors?.length) {
      continue;
    }
    const json = document.toJSON();
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      continue;
    }
    if (await isValid(json)) {
      valid++;
    }
  }
  return { documents, valid };
}

/** The median of a list of numbers. */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  const [jsonlPath, yamlPath] = process.argv.slice(2);
  if (!jsonlPath || !yamlPath) {
    console.error('usage: node bench.js <corpus.jsonl> <corpus.yaml>');
    process.exit(2);
  }
  const entities = fs
    .readFileSync(jsonlPath, 'utf8')
    .split('\n')
    .filter(line => line.length > 0)
    .map(line => JSON.parse(line));
  const yamlText = fs.readFileSync(yamlPath, 'utf8');

  // (a) Already-parsed entities. Each run gets fresh deep copies, made before its clock starts:
  // policies may return merged copies and validators must never see a previous run's output.
  const parsedRates = [];
  let verdicts = [];
  for (let run = 0; run <= RUNS; run++) {
    const copies = structuredClone(entities);
    const start = performance.now();
    verdicts = await validateParsed(copies);
    const seconds = (performance.now() - start) / 1000;
    if (run > 0) {
      parsedRates.push(entities.length / seconds);
    }
  }

  // (b) YAML text to validated entities.
  const yamlRates = [];
  let yamlResult = { documents: 0, valid: 0 };
  for (let run = 0; run <= RUNS; run++) {
    const start = performance.now();
    yamlResult = await parseAndValidate(yamlText);
    const seconds = (performance.now() - start) / 1000;
    if (run > 0) {
      yamlRates.push(yamlResult.documents / seconds);
    }
  }

  const valid = verdicts.filter(Boolean).length;
  if (yamlResult.documents !== entities.length || yamlResult.valid !== valid) {
    console.error(
      `bench.js: warning: YAML corpus gave ${yamlResult.documents} documents, ${yamlResult.valid} valid; ` +
        `JSONL gave ${entities.length} entities, ${valid} valid`,
    );
  }
  console.log(
    JSON.stringify({
      parsedPerSec: median(parsedRates),
      yamlPerSec: median(yamlRates),
      valid,
      verdicts: verdicts.map(v => (v ? '1' : '0')).join(''),
    }),
  );
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
