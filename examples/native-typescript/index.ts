// The app example through the native provider's generated TypeScript SDK (@mixpeek/pulumi):
// deploy ../app/site to staging, then promote that exact version to production.
// Paths are relative to this project folder, so the stack's state reads the same everywhere.
import * as pulumi from "@pulumi/pulumi";
import * as mixpeek from "@mixpeek/pulumi";

const config = new pulumi.Config();
const appId = config.get("appId") ?? "app_demo_site";

const staging = new mixpeek.AppDeploy("site-staging", {
    appId,
    bundle: "../app/site",
    environment: "staging",
    message: "Demo site from examples/native-typescript",
});
const production = new mixpeek.AppPromotion("site-production", {
    appId,
    version: staging.version,
    sourceDeployId: staging.deployId, // the smoke-test gate checks the deploy that built it
    environment: "production",
});

export const deployId = staging.deployId;
export const version = staging.version;
export const url = staging.url;
export const productionDeployId = production.deployId;
export const productionUrl = production.url;
