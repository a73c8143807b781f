// Print the project railway.ts describes, as JSON, for one environment (default "production"):
//   npm run render -- staging
// Used by tests/deploy/test_railway_ts.py; needs Node >= 22.18 (TypeScript type stripping).
import { createRailwayContext, project } from "railway/iac";

const environment = process.argv[2] ?? "production";
const { default: program } = await import("./railway.ts");
const definition = await program(createRailwayContext({ environment, command: "plan" }), project);
process.stdout.write(JSON.stringify(definition, null, 2) + "\n");
