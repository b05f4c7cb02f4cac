// The app example through the native provider's generated Go SDK: deploy ../app/site to
// staging, then promote that exact version to production.
//
// The program is served inline by the Automation API, as `pulumi up` would serve it through
// the Go language host (pulumi-language-go), which the Go module proxy does not serve here:
//
//	go run . up [work-dir [stack]]        # also: preview, with --expect-no-changes
//
// Paths are relative to the project folder, so the stack's state reads the same everywhere.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mixpeek/mixpeek-pulumi/sdk/go/mixpeek"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

const project = "mixpeek-native-go"

// summaryMark starts the one line the test harness reads the change summary from.
const summaryMark = "::mixpeek-summary::"

func program(ctx *pulumi.Context) error {
	appID := config.Get(ctx, "appId")
	if appID == "" {
		appID = "app_demo_site"
	}
	staging, err := mixpeek.NewAppDeploy(ctx, "site-staging", &mixpeek.AppDeployArgs{
		AppId:       pulumi.String(appID),
		Bundle:      pulumi.String("../app/site"),
		Environment: pulumi.String("staging"),
		Message:     pulumi.String("Demo site from examples/native-go"),
	})
	if err != nil {
		return err
	}
	production, err := mixpeek.NewAppPromotion(ctx, "site-production", &mixpeek.AppPromotionArgs{
		AppId:   pulumi.String(appID),
		Version: staging.Version,
		// The smoke-test gate checks the deploy that built the version.
		SourceDeployId: staging.DeployId,
		Environment:    pulumi.String("production"),
	})
	if err != nil {
		return err
	}
	ctx.Export("deployId", staging.DeployId)
	ctx.Export("version", staging.Version)
	ctx.Export("url", staging.Url)
	ctx.Export("productionDeployId", production.DeployId)
	ctx.Export("productionUrl", production.Url)
	return nil
}

func run(args []string) (map[string]int, error) {
	if len(args) < 1 || (args[0] != "up" && args[0] != "preview") {
		return nil, fmt.Errorf("usage: go run . <up|preview> [work-dir [stack]] [--expect-no-changes]")
	}
	verb, workDir, stackName := args[0], ".", "dev"
	expectNoChanges, parallel := false, 0
	var positional []string
	for _, arg := range args[1:] {
		switch {
		case arg == "--expect-no-changes":
			expectNoChanges = true
		case strings.HasPrefix(arg, "--parallel="):
			parallel, _ = strconv.Atoi(strings.TrimPrefix(arg, "--parallel="))
		default:
			positional = append(positional, arg)
		}
	}
	if len(positional) > 0 {
		workDir = positional[0]
	}
	if len(positional) > 1 {
		stackName = positional[1]
	}
	ctx := context.Background()
	stack, err := auto.UpsertStackInlineSource(ctx, stackName, project, program, auto.WorkDir(workDir))
	if err != nil {
		return nil, err
	}
	if verb == "up" {
		opts := []optup.Option{optup.ProgressStreams(os.Stdout), optup.ErrorProgressStreams(os.Stdout)}
		if parallel > 0 {
			opts = append(opts, optup.Parallel(parallel))
		}
		res, err := stack.Up(ctx, opts...)
		if err != nil || res.Summary.ResourceChanges == nil {
			return nil, err
		}
		return *res.Summary.ResourceChanges, nil
	}
	opts := []optpreview.Option{
		optpreview.ProgressStreams(os.Stdout), optpreview.ErrorProgressStreams(os.Stdout),
	}
	if expectNoChanges {
		opts = append(opts, optpreview.ExpectNoChanges())
	}
	res, err := stack.Preview(ctx, opts...)
	if err != nil {
		return nil, err
	}
	changes := map[string]int{}
	for op, n := range res.ChangeSummary {
		changes[string(op)] = n
	}
	return changes, nil
}

func main() {
	changes, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	summary, _ := json.Marshal(changes)
	fmt.Println(summaryMark + string(summary))
}
