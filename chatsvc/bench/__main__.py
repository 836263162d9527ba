from chatsvc.bench.cli import main

main()
