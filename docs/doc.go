// Package docs holds the admin documentation (the *.md files here); its
// tests keep what the documents claim about the repository true.
package docs
