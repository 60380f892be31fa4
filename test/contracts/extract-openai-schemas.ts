// Regenerates test/contracts/openai-schemas.json from openai-openapi.yaml: run `npx tsx test/contracts/extract-openai-schemas.ts`.
import { writeFileSync } from "node:fs";
import { CONTRACT_FILES, OPENAI_SCHEMA_ROOTS, extractSchemas, readSpecFile } from "../fakes/contracts.js";

const extract = extractSchemas(readSpecFile(CONTRACT_FILES.openAIYaml), OPENAI_SCHEMA_ROOTS);
writeFileSync(CONTRACT_FILES.openAIExtract, `${JSON.stringify(extract, null, 2)}\n`);
console.log(`wrote ${CONTRACT_FILES.openAIExtract}`);
