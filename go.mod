module github.com/hornbeam-go/hornbeam

go 1.26.8
