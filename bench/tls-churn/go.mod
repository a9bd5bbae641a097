module tlschurn

go 1.19
