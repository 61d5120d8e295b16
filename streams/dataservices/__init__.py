"""Data services (issue 17): versioned service documents, review, applications, app keys, serving."""
