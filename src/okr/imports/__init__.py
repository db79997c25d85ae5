"""Import CRM data: the DESIGN 7 contract (core) and the service the CLI, web page and API share."""
