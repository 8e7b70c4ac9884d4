module aiinfra.local/standin

go 1.26
