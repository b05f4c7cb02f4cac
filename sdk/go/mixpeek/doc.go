// Deploy Mixpeek Apps and Plugins from any Pulumi language.
package mixpeek
