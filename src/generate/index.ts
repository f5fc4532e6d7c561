export { generate, resolveGenerateOptions, dataFileName, labelsFileName, labelsAsOf } from './generate.js';
export type { GenerateOptions, GenerateSummary, GeneratedFile, FilledGenerateOptions } from './generate.js';
export { Prng, WeightedPicker, hash32, mix32 } from './prng.js';
