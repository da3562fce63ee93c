/** Compose projects resolved on the operator's side (design.md decision 12): load → bundle → manager script. */
export { loadComposeProject, type ComposeProject, type LoadComposeOptions } from './project';
export { buildComposeBundle, contentHash, hashedName, type ComposeBundle, type BundleFile, type SwarmObjectName } from './bundle';
export { composeDeployBody, type ComposeScriptOptions } from './deploy-script';
export { planComposeStack, reportComposeDeploy, runComposeStack, stageComposePlan, type ComposeStackPlan, type ComposeStackOptions, type StagedScript } from './plan';
export { s3StagingChannel, type StagingChannel, type StagedObject } from './staging';
export { archiveBundle, tar } from './archive';
export { parseComposeYaml } from './parse';
