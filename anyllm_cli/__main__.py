from anyllm_cli.cli import main

main()
