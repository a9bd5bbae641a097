module proxyload

go 1.19
