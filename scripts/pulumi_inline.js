// The Node.js side of an inline run (scripts/pulumi_stack.py): the compiled program served from
// this process through @pulumi/pulumi's Automation API, as the Node.js language host (which the
// Go module proxy does not serve) would serve it. The CLI's output is streamed back; the last
// line carries the change summary after a marker.
//
//   node scripts/pulumi_inline.js <up|preview> <work_dir> <stack> <program.js> <cli_root> [flags]
"use strict";

const fs = require("fs");
const path = require("path");
const { LocalWorkspace, PulumiCommand } = require("@pulumi/pulumi/automation");

const SUMMARY_MARK = "::mixpeek-summary::";

function projectName(workDir) {
    const text = fs.readFileSync(path.join(workDir, "Pulumi.yaml"), "utf8");
    const line = text.split("\n").find((l) => l.startsWith("name:"));
    return line ? line.slice("name:".length).trim() : "";
}

async function main(argv) {
    const [verb, workDir, stackName, program, cliRoot, ...flags] = argv;
    const pulumiCommand = await PulumiCommand.get({ root: cliRoot, skipVersionCheck: true });
    const stack = await LocalWorkspace.selectStack(
        { stackName, projectName: projectName(workDir), program: async () => require(program) },
        { workDir, pulumiHome: process.env.PULUMI_HOME, pulumiCommand },
    );
    const echo = (text) => process.stdout.write(text);
    const options = { onOutput: echo, onError: echo, color: "never" };
    if (flags.includes("--expect-no-changes")) {
        options.expectNoChanges = true;
    }
    for (const flag of flags) {
        if (flag.startsWith("--parallel=")) {
            options.parallel = Number(flag.split("=")[1]);
        }
    }
    let changes;
    try {
        if (verb === "up") {
            changes = (await stack.up(options)).summary.resourceChanges || {};
        } else {
            changes = (await stack.preview(options)).changeSummary || {};
        }
    } catch (err) {
        return 1; // the CLI's own output, already echoed, says why
    }
    process.stdout.write(`${SUMMARY_MARK}${JSON.stringify(changes)}\n`);
    return 0;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
        process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
        process.exit(1);
    },
);
