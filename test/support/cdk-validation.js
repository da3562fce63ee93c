/**
 * Unit tests synthesize without the CDK's built-in CloudFormation validation: its WebAssembly rule engine starts
 * anew in every test file's module registry, ~10 CPU-s each, most of the suite's CDK cost.
 * test/cluster/template-validation.test.ts turns it back on for every shape of configuration;
 * `CDK_VALIDATION=true npx jest …` runs every synth with it.
 */
process.env.CDK_VALIDATION ??= 'false';
