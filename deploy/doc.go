// Package deploy holds no Go code: this directory has the configuration files the compose
// files at the repository root mount (Redis, the workers' model lists), and its tests check
// the deployment as a whole without Docker, which the machines that run the tests lack: they
// parse the Dockerfile and every compose file (the root ones and monitoring's) and check that
// the services, images, ports, volumes and environment variables agree with the binary's
// flags (docs/configuration.md, which cmd/neovratz's tests keep in step with the flags), with
// the monitoring bundle and with each other, and that nothing is published publicly by default.
package deploy
