// Railway Infrastructure as Code for proxyllm: `railway config plan`, then `railway config apply`.
// (Config as Code files - railway.toml / railway.json - are not used: Railway stops reading them on
// 2026-12-01.) Railway does not read this file during deploys; after one apply, a git push deploys
// with these settings. See docs/deploy-railway.md.
//
// Secrets are references, never values: LITELLM_MASTER_KEY and TAILSCALE_AUTH_KEY point at shared
// variables of the environment (`${{shared.NAME}}`), which are created sealed in the dashboard.
import { defineRailway, postgres, project, redis, service } from "railway/iac";

// A tailnet hostname per environment: lowercase letters, digits and dashes.
function tailnetName(environment: string | undefined): string {
  const suffix = (environment ?? "preview").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `railway-proxyllm-${suffix || "preview"}`.slice(0, 63);
}

export default defineRailway((ctx) => {
  const production = ctx.isEnvironment("production");

  const db = postgres("postgres");
  const cache = redis("redis");

  const proxy = service("proxyllm", {
    build: { builder: "DOCKERFILE", dockerfilePath: "Dockerfile.railway" },
    healthcheck: "/health/liveliness",
    healthcheckTimeout: 120,
    replicas: production ? 2 : 1,
    deploy: {
      restartPolicyType: "ON_FAILURE",
      restartPolicyMaxRetries: 10,
      drainingSeconds: 30,
    },
    env: {
      DATABASE_URL: db.env.DATABASE_URL,
      REDIS_URL: cache.env.REDIS_URL,
      LITELLM_MASTER_KEY: ctx.shared.LITELLM_MASTER_KEY,
      TAILSCALE_AUTH_KEY: ctx.shared.TAILSCALE_AUTH_KEY,
      LITELLM_SALT_KEY: ctx.shared.LITELLM_SALT_KEY,
      TAILSCALE_HOSTNAME: production ? "railway-proxyllm" : tailnetName(ctx.environment),
      TAILSCALE_TAGS: "tag:railway-proxy",
      TAILSCALE_UP_TIMEOUT: "30",
      TAILSCALE_WAIT_SECONDS: "30",
      TAILNET_HOSTS: "hugo",
      LOG_LEVEL: "info",
    },
  });

  return project("proxyllm", { resources: [db, cache, proxy] });
});
